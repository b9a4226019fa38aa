import { createWorkerCaches } from "../../src/caches.ts";
import { createApp } from "../../src/app.ts";

/**
 * Mounts that are not the Platform API: the health check, the host agents' protocol
 * (authenticated by host secrets), signed upload URLs and log stream URLs (authenticated by
 * their signature), and the browser side: `heroku login`'s handoff (a poll token) and the
 * dashboard (a session cookie); git over HTTP (`/<app>.git/...`) and build output URLs;
 * the data API of the `pg:*` commands (Heroku serves it on another host, without a
 * schema; its own tests cover it, credentials included); and the buildpack registry's
 * public lookups (another host of Heroku's too).
 */
const NOT_PLATFORM_API = [
  /^\/health$/,
  /^\/internal\//,
  /^\/blobs\//,
  /^\/auth(\/|$)/,
  /^\/dashboard(\/|$)/,
  /^\/$/,
  /^\/log-sessions\//,
  /^\/:repo\{/,
  /^\/build-output\//,
  /^\/client\/v11\//,
  /^\/postgres\/v0\//,
  /^\/buildpack-registry\//,
];

/** The Platform API routes the control plane mounts, as `METHOD /path/:param` (middleware left out). */
let cached: string[] | undefined;
export function mountedRoutes(): string[] {
  if (!cached) {
    const routes = new Set<string>();
    for (const r of createApp(createWorkerCaches()).routes) {
      if (r.method !== "ALL" && !NOT_PLATFORM_API.some((re) => re.test(r.path))) routes.add(`${r.method} ${r.path}`);
    }
    cached = [...routes].sort();
  }
  return [...cached];
}

/** The mounted route a concrete request lands on (the most literal pattern that matches), or undefined. */
export function routeOf(method: string, urlPath: string): string | undefined {
  const bare = urlPath.split("?")[0]!;
  const matching = mountedRoutes().filter((route) => {
    const [m, pattern] = route.split(" ") as [string, string];
    const re = new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:\w+/g, "[^/]+")}$`);
    return m === method.toUpperCase() && re.test(bare);
  });
  const literal = (route: string) => route.replace(/:\w+/g, "").length;
  return matching.sort((a, b) => literal(b) - literal(a))[0];
}
