import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { DRAIN_LIMIT_BYTES, drainReader } from "../lib/drain.ts";

/** The declared body length, or null for a chunked body (or none). */
function declaredLength(req: Request): number | null {
  const header = req.headers.get("Content-Length");
  return header === null ? null : Number(header);
}

/**
 * Reads off a request body the handler never read (a 401 or 404 given before an upload was
 * looked at) before the answer goes out. Answered early, the rest of that body is left on
 * the connection, which workerd then closes under a client that may reuse it (see
 * drainReader). A body declared larger than DRAIN_LIMIT_BYTES is not read: its early
 * answer (413) is the point.
 */
export const discardUnreadBody = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const body = c.req.raw.body;
  if (!body || c.req.raw.bodyUsed || body.locked) return;
  const length = declaredLength(c.req.raw);
  if (length === null || length <= DRAIN_LIMIT_BYTES) await drain(body, DRAIN_LIMIT_BYTES);
});

/**
 * Limits a request body to `maxBytes`, as `payload_too_large` (413) with `message`. A
 * declared length over the limit is refused before anything is read; a chunked body is
 * read (it is small: this guards JSON and form bodies) and, when it runs over, the rest is
 * read off before the answer, for the reason above.
 */
export function limitBody(maxBytes: number, message: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const length = declaredLength(raw);
    if (length !== null) {
      if (!(length <= maxBytes)) throw new ApiError("payload_too_large", message);
      return next();
    }
    const reader = raw.body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await drainReader(reader, DRAIN_LIMIT_BYTES - size);
        throw new ApiError("payload_too_large", message);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
    // `cf` is carried over: it holds what the runtime saw of the client (its socket's address, locally).
    c.req.raw = new Request(raw, { body: bytes, cf: raw.cf });
    return next();
  });
}

function drain(body: ReadableStream<Uint8Array>, limit: number): Promise<void> {
  return drainReader(body.getReader(), limit);
}
