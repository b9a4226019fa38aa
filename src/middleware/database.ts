import { createMiddleware } from "hono/factory";
import { openDb } from "../db/client.ts";
import type { AppEnv } from "../env.ts";

/** Opens a database connection for this request and closes it once the response is ready. */
export const database = createMiddleware<AppEnv>(async (c, next) => {
  const handle = await openDb(c.env.DATABASE_URL, { neonWsProxy: c.env.NEON_WS_PROXY });
  c.set("db", handle.db);
  try {
    await next();
  } finally {
    const closing = handle.close();
    try {
      c.executionCtx.waitUntil(closing);
    } catch {
      await closing; // no execution context (e.g. app.request in Node)
    }
  }
});
