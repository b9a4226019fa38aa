import { eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { openDb, type Database } from "../db/client.ts";
import { apps } from "../db/schema/index.ts";
import type { AppEnv } from "../env.ts";
import { logEvent } from "../services/logs.ts";
import { hasDeployed } from "../services/slugs.ts";
import type { RouterErrorCode } from "./errors.ts";
import { routerLogLine } from "./errors.ts";
import { forwardToDyno, pickInTurn, webDynos, type WebDyno } from "./forward.ts";
import { applicationErrorPage, noSuchAppPage, welcomePage } from "./pages.ts";

/** The app name a Host header addresses under APPS_DOMAIN, if any. */
export function appNameFromHost(host: string | undefined, appsDomain: string): string | null {
  if (!host) return null;
  const hostname = host.replace(/:\d+$/, "").toLowerCase();
  const suffix = `.${appsDomain.toLowerCase()}`;
  if (!hostname.endsWith(suffix)) return null;
  const name = hostname.slice(0, -suffix.length);
  return name && !name.includes(".") ? name : "";
}

/** Requests for `<app>.<APPS_DOMAIN>` go to the app's web dynos; everything else is the API. */
export const appHostRouter = createMiddleware<AppEnv>(async (c, next) => {
  const name = appNameFromHost(c.req.header("Host"), c.env.APPS_DOMAIN);
  if (name === null) return next();
  const handle = await openDb(c.env.DATABASE_URL, { neonWsProxy: c.env.NEON_WS_PROXY });
  try {
    const [app] = name ? await handle.db.select({ id: apps.id, lastRequestAt: apps.lastRequestAt }).from(apps).where(eq(apps.name, name)).limit(1) : [];
    if (!app) return c.html(noSuchAppPage(), 404);
    if (!(await hasDeployed(handle.db, app.id))) return c.html(welcomePage(name), 200);
    return await routeToApp(c, handle.db, app);
  } finally {
    c.executionCtx.waitUntil(handle.close());
  }
});

const lastTouched = new Map<string, number>();
/** Records that the app is in use, at most once a minute per Worker instance (eco apps sleep when idle). */
async function touch(db: Database, appId: string) {
  const now = Date.now();
  if (now - (lastTouched.get(appId) ?? 0) < 60_000) return;
  lastTouched.set(appId, now);
  await db.update(apps).set({ lastRequestAt: sql`now()` }).where(eq(apps.id, appId));
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

async function routeToApp(c: Context<AppEnv>, db: Database, app: { id: string }) {
  const started = Date.now();
  const requestId = c.req.header("X-Request-Id") && /^[\w-]{20,200}$/.test(c.req.header("X-Request-Id")!) ? c.req.header("X-Request-Id")! : c.var.requestId;
  const clientIp = c.req.header("CF-Connecting-IP") ?? c.req.header("X-Real-IP") ?? "127.0.0.1";
  const url = new URL(c.req.url);
  const fields = {
    method: c.req.method,
    path: url.pathname + url.search,
    host: url.host,
    requestId,
    fwd: clientIp,
    protocol: url.protocol.replace(":", ""),
  };
  const fail = (code: RouterErrorCode, dyno?: string, serviceMs = Date.now() - started) => {
    const page = applicationErrorPage().toString();
    c.executionCtx.waitUntil(
      logEvent(c.env, app.id, "heroku", "router", routerLogLine({ ...fields, dyno, connectMs: 0, serviceMs, status: 503, bytes: page.length }, code)),
    );
    return c.html(page, 503, { "Retry-After": "5" });
  };

  await touch(db, app.id);
  let list = await webDynos(db, app.id);
  if (!list.length) return fail("H14");
  if (list.every((d) => d.desired === "sleeping")) {
    const coordinator = c.env.APP_COORDINATOR.get(c.env.APP_COORDINATOR.idFromName(app.id));
    if (!(await coordinator.wake(app.id))) return fail("H20");
    list = await webDynos(db, app.id);
  }
  if (!list.some(routable)) list = await waitForUp(db, app.id, started + 75_000);
  const candidates = list.filter(routable);
  if (!candidates.length) {
    if (list.some((d) => d.desired === "up" && d.state === "starting")) return fail("H20");
    if (list.some((d) => d.desired === "up" && d.state === "crashed")) return fail("H10", list.find((d) => d.state === "crashed")?.name);
    return fail("H14");
  }
  const dyno = pickInTurn(app.id, candidates);
  const result = await forwardToDyno(c, dyno, requestId, clientIp);
  if (!result.response) {
    const code = result.failure === "timeout" ? "H12" : result.failure === "not_running" ? "H10" : "H13";
    return fail(code, dyno.name, result.serviceMs);
  }
  const res = result.response;
  const bytes = Number(res.headers.get("Content-Length") ?? 0);
  c.executionCtx.waitUntil(
    logEvent(
      c.env,
      app.id,
      "heroku",
      "router",
      routerLogLine({ ...fields, dyno: dyno.name, connectMs: result.connectMs, serviceMs: result.serviceMs, status: res.status, bytes }),
    ),
  );
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: res.headers });
}
