import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

/**
 * Heroku's per-token budget: each token may make RATE_LIMIT_PER_HOUR calls an hour,
 * refilled continuously. The count lives in one Durable Object per token, so every
 * Worker instance sees the same budget. `RateLimit-Remaining` goes on every answer.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const limit = Number(c.env.RATE_LIMIT_PER_HOUR) || 4500;
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(c.var.actor.authorizationId));
  const { allowed, remaining } = await stub.take(limit);
  c.header("RateLimit-Remaining", String(remaining));
  if (!allowed) throw new ApiError("rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.");
  await next();
});
