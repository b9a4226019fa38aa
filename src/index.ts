import { createApp } from "./app.ts";
import { createWorkerCaches } from "./caches.ts";
import { fastRoute } from "./router/index.ts";
import { purgeExpiredAuthorizations } from "./cron/purge-authorizations.ts";
import { deliverDue } from "./services/webhooks/webhooks.ts";
import { pruneEvents } from "./services/events/outbox.ts";
import { purgeLoginRecords } from "./cron/purge-login-records.ts";
import { enforceAddonStorage } from "./cron/enforce-addon-storage.ts";
import { runScheduledBackups } from "./services/addons/backup-schedules.ts";
import { expireStaleTransfers } from "./services/addons/backups.ts";
import { sleepIdleAppsJob } from "./cron/sleep-idle-apps.ts";
import type { Bindings } from "./env.ts";
import { platformContext, withDb } from "./services/context.ts";
import { enforceEcoQuotas } from "./services/eco/eco.ts";
import { actAt, runClock } from "./cron/clock.ts";
import { keepAliveJob, type KeepAliveMessage, pingApps, type RouteFn } from "./services/eco/keep-alive.ts";

export { AppCoordinator } from "./durable-objects/app-coordinator.ts";
export { BuildChannel } from "./durable-objects/build-channel.ts";
export { FleetWatch } from "./durable-objects/fleet-watch.ts";
export { AppMetrics } from "./durable-objects/app-metrics.ts";
export { LogChannel } from "./durable-objects/log-channel.ts";
export { RateLimiter } from "./durable-objects/rate-limiter.ts";

// Where this Worker instance starts: what it keeps between requests, and the app that serves them.
const caches = createWorkerCaches();
const app = createApp(caches);

export default {
  /**
   * An app's request whose route this instance knows goes straight to a dyno (the router's
   * fast path); everything else, and a request the fast path could not place, is the app's.
   */
  fetch(request, env, ctx) {
    const fast = fastRoute(caches.router, request, env, ctx);
    return fast ? fast.then((answered) => answered ?? app.fetch(request, env, ctx)) : app.fetch(request, env, ctx);
  },

  /**
   * Every 10 minutes: the scheduled jobs, each bounded and idempotent (a run that repeats
   * or overlaps another changes nothing twice); one failing does not stop the rest.
   */
  async scheduled(controller, env, ctx) {
    const now = runClock(controller.scheduledTime, env);
    const route: RouteFn = async (request) => app.fetch(request, env, ctx);
    await withDb(env, async (db) => {
      await actAt(db, now);
      // The platform acts: no account, no request; effects finish before the connection closes.
      const run = platformContext(db, env, (work) => ctx.waitUntil(work));
      const jobs: Record<string, () => Promise<object>> = {
        // Retries of sync webhooks, and deliveries whose first attempt never started: first, being due.
        "webhook-deliveries": () => deliverDue(db, env, { now, limit: 1_000 }),
        "purge-authorizations": () => purgeExpiredAuthorizations(db, now),
        "purge-login-records": () => purgeLoginRecords(db, now),
        // Dispatched events are kept a week (what changed, and what followed), then forgotten.
        "prune-events": () => pruneEvents(db, now),
        "enforce-eco-quotas": () => enforceEcoQuotas(run, now),
        "sleep-idle-apps": () => sleepIdleAppsJob(run, now),
        "keep-alive": () => keepAliveJob({ db, env, route, after: (w) => run.after(w) }, now),
        "enforce-addon-storage": () => enforceAddonStorage(db, env),
        // Daily Postgres backups whose hour has come in their time zone; transfers whose host never reported back.
        "scheduled-backups": () => runScheduledBackups(run, now),
        "expire-transfers": () => expireStaleTransfers(db, env, now),
      };
      for (const [name, job] of Object.entries(jobs)) {
        try {
          const t0 = performance.now();
          const r = await job();
          console.log(JSON.stringify({ cron: name, ms: performance.now() - t0, at: now.toISOString(), ...r }));
        } catch (err) {
          console.error(JSON.stringify({ cron: name, at: now.toISOString(), error: String(err) }));
        }
      }
      await run.settle();
    });
  },

  /** Keep-alive pings a scheduled run handed to the queue: one share per message. */
  async queue(batch, env, ctx) {
    const route: RouteFn = async (request) => app.fetch(request, env, ctx);
    await withDb(env, async (db) => {
      const run = platformContext(db, env, (work) => ctx.waitUntil(work));
      for (const message of batch.messages) {
        const { slot, at, apps } = message.body;
        try {
          const pinged = await pingApps({ db, env, route, after: (w) => run.after(w) }, slot, new Date(at), apps);
          console.log(JSON.stringify({ keep_alive_message: message.id, slot, apps: apps.length, pinged: pinged.length }));
          message.ack();
        } catch (err) {
          console.error(JSON.stringify({ keep_alive_message: message.id, slot, error: String(err) }));
          message.retry();
        }
      }
      await run.settle();
    });
  },
} satisfies ExportedHandler<Bindings, KeepAliveMessage>;
