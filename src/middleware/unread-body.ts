import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";

/** How much of an unread body is read off after the answer; past it the body is cancelled. */
const DRAIN_LIMIT_BYTES = 16 * 1024 * 1024;

/**
 * Reads off, after the answer has gone, a request body the handler never read (a 401 or 404
 * given before an upload was looked at). Left unread, the rest of that body stays on the
 * connection, and a proxy in front (wrangler's, locally) fails the next request that uses
 * it. Bodies larger than DRAIN_LIMIT_BYTES are cancelled instead: the runtime then drops the
 * connection, which fails that request alone.
 */
export const discardUnreadBody = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const body = c.req.raw.body;
  if (!body || c.req.raw.bodyUsed || body.locked) return;
  const drained = drain(body);
  try {
    c.executionCtx.waitUntil(drained);
  } catch {
    // No execution context (the app mounted in a test): the promise runs on by itself.
  }
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
