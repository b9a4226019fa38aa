import { createApp } from "./app.ts";
import { purgeExpiredAuthorizations } from "./cron/purge-authorizations.ts";
import { openDb } from "./db/client.ts";
import type { Bindings } from "./env.ts";

export { RateLimiter } from "./durable-objects/rate-limiter.ts";

const app = createApp();

export default {
  fetch: app.fetch,

  /** Every 10 minutes: the scheduled jobs, each bounded and idempotent. */
  async scheduled(_controller, env, ctx) {
    const handle = await openDb(env.DATABASE_URL, { neonWsProxy: env.NEON_WS_PROXY });
    try {
      const summary = await purgeExpiredAuthorizations(handle.db, new Date());
      console.log(JSON.stringify({ cron: "purge-authorizations", ...summary }));
    } finally {
      ctx.waitUntil(handle.close());
    }
  },
} satisfies ExportedHandler<Bindings>;
