import { createApp } from "./app.ts";
import { purgeExpiredAuthorizations } from "./cron/purge-authorizations.ts";
import { purgeLoginRecords } from "./cron/purge-login-records.ts";
import { sleepIdleAppsJob } from "./cron/sleep-idle-apps.ts";
import { openDb } from "./db/client.ts";
import type { Bindings } from "./env.ts";
import { commandConfig } from "./services/context.ts";

export { AppCoordinator } from "./durable-objects/app-coordinator.ts";
export { BuildChannel } from "./durable-objects/build-channel.ts";
export { FleetWatch } from "./durable-objects/fleet-watch.ts";
export { LogChannel } from "./durable-objects/log-channel.ts";
export { RateLimiter } from "./durable-objects/rate-limiter.ts";

const app = createApp();

export default {
  fetch: app.fetch,

  /** Every 10 minutes: the scheduled jobs, each bounded and idempotent; one failing does not stop the rest. */
  async scheduled(_controller, env, ctx) {
    const handle = await openDb(env.DATABASE_URL, { neonWsProxy: env.NEON_WS_PROXY });
    const now = new Date();
    const jobs: Record<string, () => Promise<object>> = {
      "purge-authorizations": () => purgeExpiredAuthorizations(handle.db, now),
      "purge-login-records": () => purgeLoginRecords(handle.db, now),
      "sleep-idle-apps": () => sleepIdleAppsJob(handle.db, commandConfig(env), now),
    };
    try {
      for (const [name, job] of Object.entries(jobs)) {
        try {
          console.log(JSON.stringify({ cron: name, ...(await job()) }));
        } catch (err) {
          console.error(JSON.stringify({ cron: name, error: String(err) }));
        }
      }
    } finally {
      ctx.waitUntil(handle.close());
    }
  },
} satisfies ExportedHandler<Bindings>;
