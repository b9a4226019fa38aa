import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

const limited = () => new ApiError("rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.");

/**
 * Heroku's per-token budget: each token may make RATE_LIMIT_PER_HOUR calls an hour,
 * refilled continuously. The count lives in one Durable Object per token, so every
 * Worker instance sees the same budget. `RateLimit-Remaining` goes on every answer.
 * Reads change nothing, so they run while the budget is checked and are answered 429
 * afterwards when it is spent; writes wait for the check.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const limit = Number(c.env.RATE_LIMIT_PER_HOUR) || 4500;
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(c.var.actor.authorizationId));
  const taking = stub.take(limit);
  if (!SAFE_METHODS.has(c.req.method)) {
    const { allowed, remaining } = await taking;
    c.header("RateLimit-Remaining", String(remaining));
    if (!allowed) throw limited();
    return next();
  }
  let handlerError: unknown;
  await next().catch((err: unknown) => (handlerError = err));
  const { allowed, remaining } = await taking;
  if (!allowed) {
    c.header("RateLimit-Remaining", String(remaining));
    throw limited();
  }
  if (handlerError) {
    c.header("RateLimit-Remaining", String(remaining));
    throw handlerError;
  }
  c.res.headers.set("RateLimit-Remaining", String(remaining));
});
