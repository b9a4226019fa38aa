import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Gives every request an id and echoes it as `Request-Id`. A client's own id (the first
 * of its comma-separated list) is kept when it is a UUID, so its logs and ours agree.
 */
export const requestId = createMiddleware<AppEnv>(async (c, next) => {
  const given = (c.req.header("Request-Id") ?? "").split(",")[0]!.trim();
  const id = UUID_RE.test(given) ? given.toLowerCase() : crypto.randomUUID();
  c.set("requestId", id);
  await next();
  c.header("Request-Id", id);
});
