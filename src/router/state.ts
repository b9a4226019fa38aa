import { Cache } from "../lib/cache.ts";
import { LineBatches } from "../services/logs/logs.ts";
import { RequestMeasurements } from "../services/metrics/metrics.ts";
import type { Route } from "./pings.ts";

/**
 * How long a Worker instance routes an app from what it read: requests within a second of a
 * lookup skip the database; a dyno that moved or died in that second answers "not running"
 * and the request is routed again from the database. Maintenance mode, likewise, takes
 * effect within that second.
 */
export const ROUTE_TTL_MS = 1_000;
/** How long a host that refused a connection is passed over (its heartbeats decide after that). */
export const UNREACHABLE_HOST_MS = 10_000;
/** A route token's life; one is signed again once half of it has gone. */
export const ROUTE_TOKEN_TTL_S = 60;
/** An app's use is written at most this often per Worker instance (eco apps sleep when idle). */
export const TOUCH_EVERY_MS = 60_000;

/** Apps (or hosts, or dynos) one Worker instance keeps anything for at once. */
const ENTRIES = 10_000;

/**
 * What one Worker instance's router keeps between requests, each a named cache with a size
 * and a lifetime. Constructed where the instance starts (src/index.ts) and shared by the
 * router's two entry points, the fast path and the middleware.
 */
export class RouterState {
  /** App name → its web dynos and their hosts. */
  readonly routes = new Cache<string, Route>("router.routes", { entries: ENTRIES, lifetimeMs: ROUTE_TTL_MS });
  /** Custom hostname → the app it names (null: none). */
  readonly customHosts = new Cache<string, string | null>("router.custom-hosts", { entries: ENTRIES, lifetimeMs: ROUTE_TTL_MS });
  /** App → visits per UTC hour not yet written (written and dropped with the app's next use). */
  readonly visits = new Cache<string, Map<number, number>>("router.visits", { entries: ENTRIES, lifetimeMs: 24 * 3_600_000 });
  /** Apps whose use was written within the last minute, or is being written. */
  readonly touched = new Cache<string, true>("router.touched", { entries: ENTRIES, lifetimeMs: TOUCH_EVERY_MS });
  /** App → the turn of its last request (round robin over its dynos). */
  readonly turns = new Cache<string, number>("router.turns", { entries: ENTRIES, lifetimeMs: 3_600_000 });
  /** Hosts that refused a connection lately: their dynos are passed over meanwhile. */
  readonly unreachableHosts = new Cache<string, true>("router.unreachable-hosts", { entries: ENTRIES, lifetimeMs: UNREACHABLE_HOST_MS });
  /** Host/dyno → its route token, while it has over half its life left. */
  readonly routeTokens = new Cache<string, string>("router.route-tokens", { entries: ENTRIES, lifetimeMs: (ROUTE_TOKEN_TTL_S * 1000) / 2 });
  /** `heroku[router]` lines not yet written, per app. */
  readonly lines = new LineBatches();
  /** Request measurements not yet sent, per app and minute. */
  readonly measurements = new RequestMeasurements();

  /** Whether this instance should write the app's use now: true at most once a minute per app. */
  claimTouch(appId: string): boolean {
    if (this.touched.has(appId)) return false;
    this.touched.set(appId, true);
    return true;
  }

  /**
   * Drops the routes of apps whose dynos changed (a new instance up at a new address, a dyno
   * gone), when a host reported it: their next request reads the routes afresh instead of
   * waiting out the second. On the single-machine platform, where one instance serves both,
   * a deploy's new dynos take traffic as soon as they are up.
   */
  forgetRoutes(appIds: string[]): void {
    if (!appIds.length) return;
    const changed = new Set(appIds);
    this.routes.deleteWhere((route) => changed.has(route.appId));
  }

  /** Marks a host unreachable for a while, so routing stops sending to it at once. */
  markUnreachable(hostId: string | null, now = Date.now()): void {
    if (hostId) this.unreachableHosts.set(hostId, true, { now });
  }

  /** The next turn for the app (round robin per Worker instance). */
  nextTurn(appId: string): number {
    const n = ((this.turns.get(appId) ?? -1) + 1) % 1_000_000;
    this.turns.set(appId, n);
    return n;
  }
}
