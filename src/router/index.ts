import { clocksOf } from "../lib/clocks.ts";
import { and, eq, inArray, sql } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import type { Database } from "../db/client.ts";
import { openControlDb, withDb } from "../services/context.ts";
import { apps, appTraffic, dynos, hosts } from "../db/schema/index.ts";
import type { AppEnv, Bindings } from "../env.ts";
import { appForHostname } from "../services/domains/domains.ts";
import { hasDeployed } from "../services/apps/slugs.ts";
import type { RouterErrorCode } from "./errors.ts";
import { routerLogLine } from "./errors.ts";
import { internalPings, type Route } from "./pings.ts";
import type { RouterState } from "./state.ts";
import { forwardToDyno, pickInTurn, reachable, type RouterCall, WEB_DYNO_COLUMNS, webDynos, type WebDyno } from "./forward.ts";
import { applicationErrorPage, maintenancePage, noSuchAppPage, quotaExhaustedPage, welcomePage } from "./pages.ts";

/** The app name a Host header addresses under APPS_DOMAIN, if any. */
export function appNameFromHost(host: string | undefined, appsDomain: string): string | null {
  if (!host) return null;
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  const suffix = `.${appsDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  const name = hostname.slice(0, -suffix.length);
  return name && !name.includes(".") ? name : "";
}

/**
 * The hostname of a request that may be an app's custom domain: not the API's own host, not
 * loopback and not an address. Pure.
 */
export function customHostname(host: string | undefined, apiHost: string): string | null {
  if (!host) return null;
  const hostname = host.replace(/:\d+$/, "").toLowerCase().replace(/\.$/, "");
  const api = apiHost.replace(/:\d+$/, "").toLowerCase();
  if (hostname === api || hostname === "localhost" || hostname.startsWith("[") || /^[\d.]+$/.test(hostname)) return null;
  return hostname.includes(".") ? hostname : null;
}

/** The app a custom hostname names (null: none), known for a second like a route. */
async function appNameForCustomHost(state: RouterState, env: Bindings, hostname: string): Promise<string | null> {
  const hot = state.customHosts.get(hostname);
  if (hot !== undefined) return hot;
  const found = await withDb(env, (db) => appForHostname(db, hostname));
  return state.customHosts.set(hostname, found?.name ?? null);
}

const html = (page: { toString(): string }, status: number, headers: Record<string, string> = {}) =>
  new Response(page.toString(), { status, headers: { "Content-Type": "text/html; charset=UTF-8", ...headers } });

/**
 * The router's fast path, taken before the API's middleware: a request for
 * `<app>.<APPS_DOMAIN>` whose route is in this instance's routing table goes straight to a
 * web dyno. Null when it is not such a request (the API, a custom domain, a ping, a route
 * not known yet); a request it could not place resolves to null for the full path.
 */
export function fastRoute(state: RouterState, request: Request, env: Bindings, execution: ExecutionContext): Promise<Response | null> | null {
  const name = appNameFromHost(request.headers.get("Host") ?? undefined, env.APPS_DOMAIN);
  if (!name) return null;
  const hot = state.routes.get(name);
  if (!hot || internalPings.has(request)) return null;
  if (!hot.dynos.some(routable)) return null;
  const call: RouterCall = { request, env, state, after: (work) => execution.waitUntil(work), requestId: crypto.randomUUID() };
  return routeKnown(call, routedRequest(call), name, hot, true);
}

/**
 * Routes a request along a route already known (the routing table's, or a ping's): a visit
 * is counted and touches the app; a dyno found gone drops the route and resolves to null,
 * for the request to be routed again from the database.
 */
async function routeKnown(call: RouterCall, routed: RoutedRequest, name: string, route: Route, visit: boolean): Promise<Response | null> {
  if (visit) {
    countVisit(call.state, route.appId);
    touchSoon(call, route.appId);
  }
  const answered = await dispatch(call, routed, route.appId, route.dynos.filter(routable), SAFE.has(call.request.method));
  if (!answered) call.state.routes.delete(name);
  return answered;
}

/**
 * Requests for `<app>.<APPS_DOMAIN>`, or for one of an app's custom domains, go to the app's
 * web dynos; everything else is the API.
 */
export const appHostRouter = createMiddleware<AppEnv>(async (c, next) => {
  const host = c.req.header("Host");
  let name = appNameFromHost(host, c.env.APPS_DOMAIN);
  if (name === null) {
    const custom = customHostname(host, c.env.API_HOST);
    name = custom && (await appNameForCustomHost(c.var.caches.router, c.env, custom));
    if (!name) return next();
  }
  const state = c.var.caches.router;
  const call: RouterCall = { request: c.req.raw, env: c.env, state, after: (work) => c.executionCtx.waitUntil(work), requestId: c.var.requestId };
  const routed = routedRequest(call);
  // A keep-alive ping (routed in-process by the scheduled run) is traffic, but not a visit:
  // its run records it, and it is not counted where the app's quiet hours are read.
  const ping = internalPings.get(c.req.raw);
  // A ping comes with its route, read for its whole share of apps in one query.
  const hot = ping?.route ?? state.routes.get(name);
  if (hot?.dynos.some(routable)) {
    const answered = await routeKnown(call, routed, name, hot, !ping);
    if (answered) return answered;
  }
  const handle = ping ? null : await openControlDb(c.env);
  const db = ping?.db ?? handle!.db;
  try {
    const [app] = name ? await db.select({ id: apps.id, maintenance: apps.maintenance }).from(apps).where(eq(apps.name, name)).limit(1) : [];
    if (!app) return html(noSuchAppPage(), 404);
    // Dynos keep running in maintenance; visitors get Heroku's page, and nothing wakes an app.
    if (app.maintenance) {
      state.routes.delete(name);
      return fail(call, routed, app.id, "H80");
    }
    if (!(await hasDeployed(db, app.id))) return html(welcomePage(name), 200);
    if (!ping) {
      countVisit(state, app.id);
      await touch(state, db, app.id);
    }
    return await routeToApp(call, routed, db, name, app.id);
  } finally {
    if (handle) c.executionCtx.waitUntil(handle.close());
  }
});

/** Methods whose request can be sent again when the chosen dyno turns out to be gone. */
const SAFE = new Set(["GET", "HEAD"]);

/** Counts a visit to the app in this UTC hour (each Worker instance writes its own at most once a minute). */
function countVisit(state: RouterState, appId: string) {
  const hour = new Date().getUTCHours();
  const byHour = state.visits.get(appId) ?? state.visits.set(appId, new Map<number, number>());
  byHour.set(hour, (byHour.get(hour) ?? 0) + 1);
}

/**
 * Records that the app is in use (eco apps sleep when idle) and the visits counted since,
 * by hour of day (where its quiet hours are), at most once a minute per Worker instance.
 */
async function touch(state: RouterState, db: Database, appId: string) {
  if (state.claimTouch(appId)) await writeUse(state, db, appId);
}

/** Writes that the app was used now, and its visits counted since. */
async function writeUse(state: RouterState, db: Database, appId: string) {
  await db
    .update(apps)
    .set({ lastRequestAt: sql`greatest(${apps.lastRequestAt}, now())` })
    .where(eq(apps.id, appId));
  const counted = state.visits.get(appId);
  state.visits.delete(appId);
  if (!counted?.size) return;
  await db
    .insert(appTraffic)
    .values([...counted].map(([hour, requests]) => ({ appId, hour, requests })))
    .onConflictDoUpdate({ target: [appTraffic.appId, appTraffic.hour], set: { requests: sql`${appTraffic.requests} + excluded.requests` } });
}

/** `touch` from the fast path, on a connection of its own after the response, only when one is due. */
function touchSoon(call: RouterCall, appId: string) {
  if (call.state.claimTouch(appId)) call.after(withDb(call.env, (db) => writeUse(call.state, db, appId)));
}

/**
 * The routes of many apps at once, for a keep-alive share: each app's web dynos, for apps
 * that are deployed, not in maintenance and have a dyno to route to (the others take the
 * router's usual path, waking included).
 */
export async function routesFor(db: Database, appIds: string[]): Promise<Map<string, Route>> {
  const routes = new Map<string, Route>();
  if (!appIds.length) return routes;
  const rows = await db
    .select({ appId: apps.id, maintenance: apps.maintenance, ...WEB_DYNO_COLUMNS })
    .from(apps)
    .innerJoin(dynos, and(eq(dynos.appId, apps.id), eq(dynos.type, "web")))
    .leftJoin(hosts, and(eq(hosts.id, dynos.hostId), eq(hosts.state, "up")))
    .where(inArray(apps.id, appIds));
  for (const { appId, maintenance, ...dyno } of rows) {
    if (maintenance) continue;
    const route = routes.get(appId) ?? { appId, dynos: [] };
    route.dynos.push(dyno);
    routes.set(appId, route);
  }
  for (const [appId, route] of routes) if (!route.dynos.some(routable)) routes.delete(appId);
  return routes;
}

const routable = (d: WebDyno) => d.desired === "up" && d.state === "up" && !!d.hostUrl;

/** Waits for a starting dyno to come up, as Heroku's router queues requests while an app boots. */
async function waitForUp(db: Database, appId: string, deadline: number): Promise<WebDyno[]> {
  for (;;) {
    const list = await webDynos(db, appId);
    if (list.some(routable) || !list.some((d) => d.desired === "up" && d.state === "starting") || Date.now() > deadline) return list;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface RoutedRequest {
  started: number;
  requestId: string;
  clientIp: string;
  url: URL;
  fields: { method: string; path: string; host: string; requestId: string; fwd: string; protocol: string };
}

function routedRequest(call: RouterCall): RoutedRequest {
  const { request } = call;
  const given = request.headers.get("X-Request-Id");
  const requestId = given && /^[\w-]{20,200}$/.test(given) ? given : call.requestId;
  const clientIp = request.headers.get("CF-Connecting-IP") ?? request.headers.get("X-Real-IP") ?? "127.0.0.1";
  const url = new URL(request.url);
  return {
    started: Date.now(),
    requestId,
    clientIp,
    url,
    fields: { method: request.method, path: url.pathname + url.search, host: url.host, requestId, fwd: clientIp, protocol: url.protocol.replace(":", "") },
  };
}

/** Writes a `heroku[router]` line to the app's log; a keep-alive ping's line goes with its pinger's own, in one write. */
function logRouterLine(call: RouterCall, appId: string, text: string) {
  const ping = internalPings.get(call.request);
  if (ping) ping.routerLines.push(text);
  else call.state.lines.add(call.env, appId, "heroku", "router", text, call.after);
}

/** Heroku's error page (the maintenance page for H80) with a `code=Hxx` router line. */
function fail(call: RouterCall, routed: RoutedRequest, appId: string, code: RouterErrorCode, dyno?: string, serviceMs = Date.now() - routed.started) {
  const page = (code === "H80" ? maintenancePage() : code === "H82" ? quotaExhaustedPage() : applicationErrorPage()).toString();
  logRouterLine(call, appId, routerLogLine({ ...routed.fields, dyno, connectMs: 0, serviceMs, status: 503, bytes: page.length }, code));
  call.state.measurements.record(call.env, call.after, appId, { status: 503, ms: serviceMs, bytes: page.length, code });
  return html(page, 503, { "Retry-After": "5" });
}

/**
 * Sends the request to the next dyno in turn and logs the router line. With `mayRetry`,
 * a dyno that is gone yields null so the caller can route again from fresh state.
 */
async function dispatch(call: RouterCall, routed: RoutedRequest, appId: string, candidates: WebDyno[], mayRetry: boolean): Promise<Response | null> {
  const dyno = pickInTurn(call.state, appId, reachable(call.state, candidates, Date.now(), 2.5 * clocksOf(call.env).heartbeatMs));
  const result = await forwardToDyno(call, routed.url, dyno, routed.requestId, routed.clientIp);
  if (!result.response) {
    if (result.hostUnreachable) call.state.markUnreachable(dyno.hostId);
    if (mayRetry && result.failure !== "timeout") return null;
    // A request that may be sent again tries the app's other dynos before the router answers with an error.
    const others = candidates.filter((d) => d.id !== dyno.id);
    if (SAFE.has(call.request.method) && result.failure !== "timeout" && others.length) return dispatch(call, routed, appId, others, false);
    const code = result.failure === "timeout" ? "H12" : result.failure === "not_running" ? "H10" : "H13";
    return fail(call, routed, appId, code, dyno.name, result.serviceMs);
  }
  const res = result.response;
  const bytes = Number(res.headers.get("Content-Length") ?? 0);
  logRouterLine(
    call,
    appId,
    routerLogLine({ ...routed.fields, dyno: dyno.name, connectMs: result.connectMs, serviceMs: result.serviceMs, status: res.status, bytes }),
  );
  call.state.measurements.record(call.env, call.after, appId, { status: res.status, ms: result.connectMs + result.serviceMs, bytes });
  return res;
}

async function routeToApp(call: RouterCall, routed: RoutedRequest, db: Database, name: string, appId: string) {
  let list = await webDynos(db, appId);
  if (!list.length) return fail(call, routed, appId, "H14");
  if (list.every((d) => d.desired === "sleeping")) {
    const coordinator = call.env.APP_COORDINATOR.get(call.env.APP_COORDINATOR.idFromName(appId));
    const woke = await coordinator.wake(appId);
    if (woke === "exhausted") return fail(call, routed, appId, "H82");
    if (woke === "timeout") return fail(call, routed, appId, "H20");
    list = await webDynos(db, appId);
  }
  if (!list.some(routable)) list = await waitForUp(db, appId, routed.started + 75_000);
  const candidates = list.filter(routable);
  if (!candidates.length) {
    call.state.routes.delete(name);
    if (list.some((d) => d.desired === "up" && d.state === "starting")) return fail(call, routed, appId, "H20");
    if (list.some((d) => d.desired === "up" && d.state === "crashed")) return fail(call, routed, appId, "H10", list.find((d) => d.state === "crashed")?.name);
    return fail(call, routed, appId, "H14");
  }
  call.state.routes.set(name, { appId, dynos: list });
  return (await dispatch(call, routed, appId, candidates, false))!;
}
