import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";

/** How much of an unread body is read off before the answer goes; past it the body is cancelled. */
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Reads off a request body the handler never read (a 401 or 404 given before an upload was
 * looked at) before the answer goes out. Answered early, the rest of that body is left on
 * the connection, and a proxy in front (wrangler's, locally) fails the request, and with
 * it the next one that uses the connection. Bodies larger than DRAIN_LIMIT_BYTES are
 * cancelled instead: the runtime then drops the connection, which fails that request alone.
 */
export const discardUnreadBody = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const body = c.req.raw.body;
  if (body && !c.req.raw.bodyUsed && !body.locked) await drain(body);
});

async function drain(body: ReadableStream<Uint8Array>): Promise<void> {
  const reader = body.getReader();
  try {
    for (let read = 0; read <= DRAIN_LIMIT_BYTES; ) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client went away; nothing is left to drop.
  }
}
