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

  /**
   * Hands out up to `want` calls of the budget (a Worker instance spends them itself, see
   * the rateLimit middleware), after taking back `returned` calls an earlier grant left
   * unspent. Returns how many it granted (`allowed` when at least one) and what is left.
   */
  async take(limit: number, want = 1, returned = 0, now = Date.now()): Promise<{ allowed: boolean; granted: number; remaining: number }> {
    this.bucket ??= (await this.ctx.storage.get<Bucket>("bucket")) ?? { tokens: limit, at: now };
    const refill = ((now - this.bucket.at) / 3_600_000) * limit;
    const tokens = Math.min(limit, this.bucket.tokens + Math.max(0, refill) + Math.max(0, Math.floor(returned)));
    const granted = Math.max(0, Math.min(Math.floor(want), Math.floor(tokens)));
    this.bucket = { tokens: tokens - granted, at: now };
    // The answer need not wait for the write to be confirmed: losing the last few counts
    // in a crash errs on the caller's side and is worth not adding a disk sync to every API call.
    await this.ctx.storage.put("bucket", this.bucket, { allowUnconfirmed: true });
    return { allowed: granted >= 1, granted, remaining: Math.floor(this.bucket.tokens) };
  }
}
