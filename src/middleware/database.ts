import { createMiddleware } from "hono/factory";
import { openControlDb } from "../services/context.ts";
import { dispatchEvents } from "../services/events/outbox.ts";
import type { AppEnv } from "../env.ts";

/**
 * Opens a database connection for this request and closes it once the response is ready.
 * After the answer, on the same connection, the events of what the request changed are
 * dispatched (see services/events/outbox.ts), with any that a dead instance left behind.
 */
export const database = createMiddleware<AppEnv>(async (c, next) => {
  const handle = await openControlDb(c.env);
  c.set("db", handle.db);
  try {
    await next();
  } finally {
    // With nothing undispatched this is one indexed query, after the answer.
    const closing = dispatchEvents(handle.db, c.env)
      .catch((err) => console.error(JSON.stringify({ event_dispatch_failed: String(err) })))
      .finally(() => handle.close());
    try {
      c.executionCtx.waitUntil(closing);
    } catch {
      await closing; // no execution context (e.g. app.request in Node)
    }
  }
});
