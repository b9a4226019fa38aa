import { DurableObject } from "cloudflare:workers";

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket for one API token: `limit` calls per hour, refilled continuously.
 * State is kept in memory and persisted, so it survives eviction and restarts.
 */
export class RateLimiter extends DurableObject {
  private bucket: Bucket | undefined;

  /** Spends one call if the budget allows; returns whether it did and what is left. */
  async take(limit: number, now = Date.now()): Promise<{ allowed: boolean; remaining: number }> {
    this.bucket ??= (await this.ctx.storage.get<Bucket>("bucket")) ?? { tokens: limit, at: now };
    const refill = ((now - this.bucket.at) / 3_600_000) * limit;
    const tokens = Math.min(limit, this.bucket.tokens + Math.max(0, refill));
    const allowed = tokens >= 1;
    this.bucket = { tokens: allowed ? tokens - 1 : tokens, at: now };
    // The answer need not wait for the write to be confirmed: losing the last few counts
    // in a crash errs on the caller's side and is worth not adding a disk sync to every API call.
    await this.ctx.storage.put("bucket", this.bucket, { allowUnconfirmed: true });
    return { allowed, remaining: Math.floor(this.bucket.tokens) };
  }
}
