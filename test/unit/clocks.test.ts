import { describe, expect, it } from "vitest";
import { clocksOf, DEFAULT_CLOCKS } from "../../src/lib/clocks.ts";

describe("the platform's clocks", () => {
  it("are Heroku's by default: H12 at 30 s, a silent host given up after 30 s, keep-alives well inside the CLI's 60-second idle limit", () => {
    expect(clocksOf({})).toEqual(DEFAULT_CLOCKS);
    expect(DEFAULT_CLOCKS).toEqual({
      heartbeatMs: 3_000,
      hostTimeoutMs: 30_000,
      fleetCheckMs: 10_000,
      routerTimeoutMs: 30_000,
      tailKeepAliveMs: 15_000,
      loginKeepAliveMs: 20_000,
    });
    // A host is given up only after missing several heartbeats.
    expect(DEFAULT_CLOCKS.hostTimeoutMs).toBeGreaterThan(5 * DEFAULT_CLOCKS.heartbeatMs);
    expect(DEFAULT_CLOCKS.loginKeepAliveMs).toBeLessThan(60_000);
  });

  it("take seconds, fractions too, and ignore what is not a positive number", () => {
    expect(clocksOf({ HOST_TIMEOUT_S: "8", FLEET_CHECK_S: "0.5", ROUTER_TIMEOUT_S: "10" })).toMatchObject({
      hostTimeoutMs: 8_000,
      fleetCheckMs: 500,
      routerTimeoutMs: 10_000,
    });
    for (const bad of ["", "0", "-3", "soon", "Infinity"]) expect(clocksOf({ HEARTBEAT_INTERVAL_S: bad }).heartbeatMs).toBe(3_000);
  });
});
