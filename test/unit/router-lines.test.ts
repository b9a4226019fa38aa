import { describe, expect, it } from "vitest";
import { routerLogLine } from "../../src/router/errors.ts";

const fields = {
  method: "GET",
  path: "/a?b=1",
  host: "app.apps.localhost",
  requestId: "r-1",
  fwd: "1.2.3.4",
  dyno: "web.1",
  connectMs: 1,
  serviceMs: 12,
  status: 200,
  bytes: 42,
  protocol: "https",
};

describe("router log lines", () => {
  it("writes Heroku's at=info line for a served request", () => {
    expect(routerLogLine(fields)).toBe(
      'at=info method=GET path="/a?b=1" host=app.apps.localhost request_id=r-1 fwd="1.2.3.4" dyno=web.1 connect=1ms service=12ms status=200 bytes=42 protocol=https',
    );
  });

  it.each([
    ["H10", "at=error", "App crashed"],
    ["H14", "at=error", "No web processes running"],
    ["H80", "at=info", "Maintenance mode"],
  ] as const)("writes %s as %s with Heroku's description", (code, level, desc) => {
    expect(routerLogLine({ ...fields, status: 503, dyno: undefined }, code)).toMatch(
      new RegExp(`^${level} code=${code} desc="${desc}" method=GET .* dyno= .* status=503 `),
    );
  });
});
