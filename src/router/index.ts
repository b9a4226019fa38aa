import { eq } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import { openDb } from "../db/client.ts";
import { apps } from "../db/schema/index.ts";
import type { AppEnv } from "../env.ts";
import { noSuchAppPage, welcomePage } from "./pages.ts";

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
 * Answers requests for `<app>.<APPS_DOMAIN>`: an unknown app gets the "no such app"
 * page, an app with nothing deployed the "Welcome to your new app!" page.
 */
export const appHostRouter = createMiddleware<AppEnv>(async (c, next) => {
  const name = appNameFromHost(c.req.header("Host"), c.env.APPS_DOMAIN);
  if (name === null) return next();
  const handle = await openDb(c.env.DATABASE_URL, { neonWsProxy: c.env.NEON_WS_PROXY });
  try {
    const [app] = name ? await handle.db.select({ id: apps.id }).from(apps).where(eq(apps.name, name)).limit(1) : [];
    if (!app) return c.html(noSuchAppPage(), 404);
    return c.html(welcomePage(name), 200);
  } finally {
    c.executionCtx.waitUntil(handle.close());
  }
});
