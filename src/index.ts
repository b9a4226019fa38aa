import { createApp } from "./app.ts";
import { purgeExpiredAuthorizations } from "./cron/purge-authorizations.ts";
import { purgeLoginRecords } from "./cron/purge-login-records.ts";
import { enforceAddonStorage } from "./cron/enforce-addon-storage.ts";
import { sleepIdleAppsJob } from "./cron/sleep-idle-apps.ts";
import type { Bindings } from "./env.ts";
import { platformContext, withDb } from "./services/context.ts";

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
    await withDb(env, async (db) => {
      // The platform acts: no account, no request; effects finish before the connection closes.
      const run = platformContext(db, env, (work) => ctx.waitUntil(work));
      const now = new Date();
      const jobs: Record<string, () => Promise<object>> = {
        "purge-authorizations": () => purgeExpiredAuthorizations(db, now),
        "purge-login-records": () => purgeLoginRecords(db, now),
        "sleep-idle-apps": () => sleepIdleAppsJob(run, now),
        "enforce-addon-storage": () => enforceAddonStorage(db, env),
      };
      for (const [name, job] of Object.entries(jobs)) {
        try {
          console.log(JSON.stringify({ cron: name, ...(await job()) }));
        } catch (err) {
          console.error(JSON.stringify({ cron: name, error: String(err) }));
        }
      }
      await run.settle();
    });
  },
} satisfies ExportedHandler<Bindings>;
