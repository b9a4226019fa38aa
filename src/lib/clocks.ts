/**
 * The platform's clocks, each a Worker variable in seconds (fractions allowed), Heroku's
 * and dynoplane's defaults unless set: a test platform runs them faster so that what
 * waits on them (a lost host, a request past the router's limit) is over in seconds. Pure.
 */
export interface Clocks {
  /** How often a host agent heartbeats (`HEARTBEAT_INTERVAL_S`, 3). */
  heartbeatMs: number;
  /** How long a silent host has before it is marked down and its dynos move (`HOST_TIMEOUT_S`, 30). */
  hostTimeoutMs: number;
  /** How often the fleet watch looks at the fleet (`FLEET_CHECK_S`, 10). */
  fleetCheckMs: number;
  /** How long the router waits for a dyno's response before H12 (`ROUTER_TIMEOUT_S`, Heroku's 30). */
  routerTimeoutMs: number;
  /** How often an idle log tail gets a comment (`TAIL_KEEPALIVE_S`, 15). */
  tailKeepAliveMs: number;
  /** How often `heroku login`'s waiting poll gets a space (`LOGIN_KEEPALIVE_S`, 20: the CLI gives up after 60 s of silence). */
  loginKeepAliveMs: number;
}

export type ClockVars = Partial<
  Record<"HEARTBEAT_INTERVAL_S" | "HOST_TIMEOUT_S" | "FLEET_CHECK_S" | "ROUTER_TIMEOUT_S" | "TAIL_KEEPALIVE_S" | "LOGIN_KEEPALIVE_S", string>
>;

export const DEFAULT_CLOCKS: Clocks = {
  heartbeatMs: 3_000,
  hostTimeoutMs: 30_000,
  fleetCheckMs: 10_000,
  routerTimeoutMs: 30_000,
  tailKeepAliveMs: 15_000,
  loginKeepAliveMs: 20_000,
};

const seconds = (value: string | undefined, fallbackMs: number) => {
  const n = Number(value);
  return value && Number.isFinite(n) && n > 0 ? Math.round(n * 1000) : fallbackMs;
};

/** The clocks a Worker's variables set. */
export function clocksOf(env: ClockVars): Clocks {
  return {
    heartbeatMs: seconds(env.HEARTBEAT_INTERVAL_S, DEFAULT_CLOCKS.heartbeatMs),
    hostTimeoutMs: seconds(env.HOST_TIMEOUT_S, DEFAULT_CLOCKS.hostTimeoutMs),
    fleetCheckMs: seconds(env.FLEET_CHECK_S, DEFAULT_CLOCKS.fleetCheckMs),
    routerTimeoutMs: seconds(env.ROUTER_TIMEOUT_S, DEFAULT_CLOCKS.routerTimeoutMs),
    tailKeepAliveMs: seconds(env.TAIL_KEEPALIVE_S, DEFAULT_CLOCKS.tailKeepAliveMs),
    loginKeepAliveMs: seconds(env.LOGIN_KEEPALIVE_S, DEFAULT_CLOCKS.loginKeepAliveMs),
  };
}
