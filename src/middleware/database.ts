import { createMiddleware } from "hono/factory";
import { openControlDb } from "../services/context.ts";
import type { AppEnv } from "../env.ts";

/** Opens a database connection for this request and closes it once the response is ready. */
export const database = createMiddleware<AppEnv>(async (c, next) => {
  const handle = await openControlDb(c.env);
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
