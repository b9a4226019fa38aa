import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import type { RateLimiter } from "../durable-objects/rate-limiter.ts";
import { ApiError } from "../errors.ts";
import { Cache } from "../lib/cache.ts";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

const limited = () => new ApiError("rate_limit", "Your account reached the API rate limit. Please wait a few minutes before making new requests.");

/** How long a Worker instance may spend calls it was granted before it asks again. */
const LEASE_MS = 1_000;

/** Calls granted at once: a thousandth of the hourly budget, 1 to 50 (1 keeps a small budget exact). */
function leaseSize(limit: number): number {
  return Math.max(1, Math.min(50, Math.floor(limit / 1000)));
}

interface Lease {
  /** Granted calls not spent yet. */
  left: number;
  /** What the budget held besides them when they were granted. */
  remaining: number;
  until: number;
}

/**
 * The calls each token's budget granted this Worker instance and it has not spent yet. One
 * per instance; a token's lease lasts LEASE_MS, and is forgotten (its calls lost, at most
 * leaseSize) when it was not returned within a minute.
 */
export class RateLimitLeases {
  readonly #leases = new Cache<string, Lease>("rate-limit.leases", { entries: 10_000, lifetimeMs: 60_000 });

  /**
   * Spends one call of the token's budget: from what this instance already holds when it can
   * (no Durable Object round trip), else from the token's RateLimiter, which grants a few
   * calls at once and takes back those an expired grant left unspent. A grant lost with its
   * instance costs the caller at most leaseSize calls; with a budget under 2,000 an hour
   * every call is counted by the Durable Object itself.
   */
  async spend(stub: DurableObjectStub<RateLimiter>, tokenId: string, limit: number): Promise<{ allowed: boolean; remaining: number }> {
    const now = Date.now();
    const held = this.#leases.get(tokenId, now);
    if (held && held.until > now && held.left > 0) {
      held.left--;
      return { allowed: true, remaining: held.remaining + held.left };
    }
    const returned = held && held.until <= now ? held.left : 0;
    if (returned) this.#leases.delete(tokenId);
    const got = await stub.take(limit, leaseSize(limit), returned);
    if (!got.allowed) return { allowed: false, remaining: got.remaining };
    // Another request of this instance may have been granted calls meanwhile: they add up.
    const current = this.#leases.get(tokenId);
    if (current && current.until > now) {
      current.left += got.granted - 1;
      current.remaining = got.remaining;
      return { allowed: true, remaining: current.remaining + current.left };
    }
    this.#leases.set(tokenId, { left: got.granted - 1, remaining: got.remaining, until: now + LEASE_MS });
    return { allowed: true, remaining: got.remaining + got.granted - 1 };
  }
}

/**
 * Heroku's per-token budget: each token may make RATE_LIMIT_PER_HOUR calls an hour,
 * refilled continuously. The count lives in one Durable Object per token, so every
 * Worker instance sees the same budget; each instance spends a few calls it was granted
 * before asking again (see RateLimitLeases). `RateLimit-Remaining` goes on every answer.
 * Reads change nothing, so they run while the budget is checked and are answered 429
 * afterwards when it is spent; writes wait for the check.
 */
export const rateLimit = createMiddleware<AppEnv>(async (c, next) => {
  const limit = Number(c.env.RATE_LIMIT_PER_HOUR) || 4500;
  const stub = c.env.RATE_LIMITER.get(c.env.RATE_LIMITER.idFromName(c.var.actor.authorizationId));
  const taking = c.var.caches.leases.spend(stub, c.var.actor.authorizationId, limit);
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
