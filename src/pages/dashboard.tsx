import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import {
  clearCookie,
  csrfMatches,
  csrfTokenFor,
  fromSameOrigin,
  newCookieSecret,
  PRESESSION_COOKIE,
  readCookie,
  SESSION_COOKIE,
  writeCookie,
} from "../auth/browser-cookies.ts";
import { ApiError } from "../errors.ts";
import { authenticateBrowserSession } from "../services/access/browser-sessions.ts";
import { accountPages } from "./account-page.tsx";
import { activityPages } from "./app-activity.tsx";
import { logsPages } from "./app-logs.tsx";
import { overviewPages } from "./app-overview.tsx";
import { resourcesPages } from "./app-resources.tsx";
import { addonsPages } from "./app-addons.tsx";
import { accessPages } from "./app-access.tsx";
import { settingsPages } from "./app-settings.tsx";
import { appsPages } from "./apps-pages.tsx";
import { authPages } from "./auth-pages.tsx";
import { cliLoginPages } from "./cli-login.tsx";
import { href, takeFlash, type DashboardCall, type DashboardEnv } from "./request.ts";
import { Card, frameOf } from "./layout.tsx";
import { LOGS_SCRIPT } from "./logs-script.ts";
import { METRICS_SCRIPT, metricsPages } from "./app-metrics.tsx";
import { operatorPages } from "./operator-hosts.tsx";
import { STYLESHEET } from "./style.ts";

/**
 * Pages are self-contained: our stylesheet and script only, no framing, and nothing
 * cached, since pages carry config values and CSRF tokens.
 */
const CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const securityHeaders = createMiddleware<DashboardEnv>(async (c, next) => {
  c.header("Content-Security-Policy", CSP);
  c.header("X-Frame-Options", "DENY");
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Referrer-Policy", "same-origin");
  c.header("Cache-Control", "no-store");
  await next();
});

/**
 * Who is asking: the session cookie's live session, or an anonymous browser with a
 * pre-session cookie (so sign-in and sign-up forms carry a CSRF token too). Every POST
 * must come from our origin and return the CSRF token of the cookie it was served with.
 */
const browserSession = createMiddleware<DashboardEnv>(async (c, next) => {
  const key = c.env.COMMAND_SIGNING_KEY;
  const secret = await readCookie(c, key, SESSION_COOKIE);
  const session = secret ? await authenticateBrowserSession(c.var.db, secret) : null;
  let csrfSecret = session?.secret;
  if (!csrfSecret) {
    if (secret) clearCookie(c, SESSION_COOKIE); // signed out elsewhere, or expired
    csrfSecret = (await readCookie(c, key, PRESESSION_COOKIE)) ?? undefined;
    if (!csrfSecret) {
      csrfSecret = newCookieSecret();
      await writeCookie(c, key, PRESESSION_COOKIE, csrfSecret);
    }
  }
  c.set("session", session);
  c.set("csrf", await csrfTokenFor(csrfSecret));
  c.set("flash", null);
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    if (!fromSameOrigin(c) || !csrfMatches(body._csrf, c.var.csrf)) return formExpired(c);
  } else {
    c.set("flash", await takeFlash(c));
  }
  await next();
});

function formExpired(c: DashboardCall) {
  return c.html(
    <Card frame={frameOf(c, "Form expired")} heading="This form has expired">
      <p role="alert">The form was not sent from this site, or it is too old. Nothing was changed. Go back, reload the page and try again.</p>
      <p>
        <a href={href("/apps")}>Go to your apps</a>
      </p>
    </Card>,
    403,
  );
}

function errorPage(c: DashboardCall, status: 403 | 404 | 422 | 500, heading: string, text: string) {
  return c.html(
    <Card frame={frameOf(c, heading)} heading={heading}>
      <p role="alert">{text}</p>
      <p>
        <a href={href("/apps")}>Go to your apps</a>
      </p>
    </Card>,
    status,
  );
}

/**
 * The dashboard, mounted at /dashboard on the API host (the Platform API owns `/apps`).
 * Every page uses the same services as the API, and app pages the same owner-scoped lookup.
 */
export const dashboardRoutes = new Hono<DashboardEnv>()
  .get("/assets/style.css", (c) => c.body(STYLESHEET, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=300" }))
  .get("/assets/logs.js", (c) => c.body(LOGS_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300" }))
  .get("/assets/metrics.js", (c) => c.body(METRICS_SCRIPT, 200, { "Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300" }))
  .use(securityHeaders, browserSession)
  .route("/", authPages)
  .route("/", cliLoginPages)
  .route("/", accountPages)
  .route("/", appsPages)
  .route("/", overviewPages)
  .route("/", resourcesPages)
  .route("/", addonsPages)
  .route("/", settingsPages)
  .route("/", accessPages)
  .route("/", metricsPages)
  .route("/", operatorPages)
  .route("/", activityPages)
  .route("/", logsPages)
  .all("*", (c) => errorPage(c, 404, "Page not found", "There is no dashboard page at this address."))
  .onError((err, c) => {
    if (err instanceof ApiError && err.status === 404) return errorPage(c, 404, "Not found", err.message);
    if (err instanceof ApiError && err.status === 403) return errorPage(c, 403, "Not allowed", err.message);
    if (err instanceof ApiError && err.status < 500) return errorPage(c, 422, "That did not work", err.message);
    console.error(JSON.stringify({ request_id: c.var.requestId, error: String(err), stack: (err as Error).stack }));
    return errorPage(c, 500, "Something went wrong", "An internal error occurred. Please try again later.");
  });
