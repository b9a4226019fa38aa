import { RateLimitLeases } from "./middleware/rate-limit.ts";
import { RouterState } from "./router/state.ts";

/**
 * What one Worker instance keeps between requests: the router's routes, route tokens,
 * turns, unreachable hosts, and its batched lines and measurements; the rate limiter's
 * leases. Each is a named cache with a size and a lifetime (see src/lib/cache.ts),
 * constructed once where the instance starts (src/index.ts) and handed to the requests
 * (`c.var.caches`).
 */
export interface WorkerCaches {
  router: RouterState;
  leases: RateLimitLeases;
}

export function createWorkerCaches(): WorkerCaches {
  return { router: new RouterState(), leases: new RateLimitLeases() };
}
