import { startWebhookDeliveries } from "./webhooks.ts";
import type { Context } from "hono";
import { type Database, type DbHandle, openDb } from "../db/client.ts";
import type { Actor, Bindings } from "../env.ts";
import type { DynoChanges } from "./dynos.ts";
import { type CommandConfig, pushDynoChanges } from "./host-commands.ts";
import { capLine } from "../logs/lines.ts";
import { logChannel } from "./logs.ts";
import { recordEvents, releaseEvent } from "./metrics.ts";

/**
 * What a service verb runs with, built once per request, scheduled run or Durable Object
 * call. Verbs take it first and own their effects: they push dyno changes to hosts, write
 * the app's `app[api]` lines and the audit row, so no caller has to remember them.
 */
export interface ServiceContext {
  db: Database;
  env: Bindings;
  /** Who acts: a signed-in account, or null for the platform itself (a scheduled job, an alarm). */
  actor: Actor | null;
  requestId: string | null;
  /** Lets `work` finish after the answer or the run (`waitUntil` where there is an execution context). */
  after(work: Promise<unknown>): void;
}

/** A context for work with no execution context to outlive: `after` work is awaited by `settle`. */
export interface DetachedContext extends ServiceContext {
  /** Waits for everything handed to `after`. */
  settle(): Promise<void>;
}

/** The context of one request (API route or dashboard page); `actor` is who is signed in. */
export function requestContext(
  c: Pick<Context, "executionCtx"> & { env: Bindings; var: { db: Database; requestId: string } },
  actor: Actor | null,
): ServiceContext {
  return {
    db: c.var.db,
    env: c.env,
    actor,
    requestId: c.var.requestId,
    after(work) {
      try {
        c.executionCtx.waitUntil(work);
      } catch {
        // No execution context (the app mounted in a test): the promise runs on by itself.
      }
    },
  };
}

/** A context for the platform's own work (a cron run, an alarm): no actor, no request. */
export function platformContext(db: Database, env: Bindings, waitUntil?: (work: Promise<unknown>) => void): DetachedContext {
  const pending: Promise<unknown>[] = [];
  return {
    db,
    env,
    actor: null,
    requestId: null,
    after(work) {
      const quiet = work.catch(() => {});
      pending.push(quiet);
      waitUntil?.(quiet);
    },
    async settle() {
      while (pending.length) await Promise.all(pending.splice(0));
    },
  };
}

/** The control plane's database connection string: Hyperdrive's when it is bound, else DATABASE_URL. */
export function databaseUrl(env: Pick<Bindings, "DATABASE_URL" | "HYPERDRIVE">): string {
  return env.HYPERDRIVE?.connectionString ?? env.DATABASE_URL;
}

/** Opens a connection to the control plane's database (see databaseUrl); the caller closes it. */
export function openControlDb(env: Pick<Bindings, "DATABASE_URL" | "HYPERDRIVE" | "NEON_WS_PROXY">): Promise<DbHandle> {
  return openDb(databaseUrl(env), { neonWsProxy: env.NEON_WS_PROXY });
}

/** Runs `fn` with a database connection of its own, closed afterwards whatever happens. */
export async function withDb<T>(env: Pick<Bindings, "DATABASE_URL" | "HYPERDRIVE" | "NEON_WS_PROXY">, fn: (db: Database) => Promise<T>): Promise<T> {
  const handle = await openControlDb(env);
  try {
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

/** How this platform signs commands to hosts, and the boot timeout dynos get. */
export const commandConfig = (env: Pick<Bindings, "COMMAND_SIGNING_KEY" | "BOOT_TIMEOUT_S">): CommandConfig => ({
  signingKey: env.COMMAND_SIGNING_KEY,
  bootTimeoutS: Number(env.BOOT_TIMEOUT_S ?? 60) || 60,
});

/**
 * Sends committed dyno changes to their hosts after the answer, on a connection of its own.
 * A command that does not arrive is harmless: the host's next heartbeat converges anyway.
 */
export function pushChanges(ctx: ServiceContext, changes: DynoChanges): void {
  if (!changes.start.length && !changes.stop.length) return;
  ctx.after(
    withDb(ctx.env, (db) => pushDynoChanges(db, commandConfig(ctx.env), changes)).catch((err) =>
      console.error(JSON.stringify({ push_failed: String(err), request_id: ctx.requestId })),
    ),
  );
}

/** The account a change is made by, for verbs only a person (or their token) may call. */
export function actingUser(ctx: Pick<ServiceContext, "actor">): Actor {
  if (!ctx.actor) throw new Error("this change is made by an account, and none is signed in");
  return ctx.actor;
}

/** Who did it, in Heroku's words for `app[api]` lines: `user a@b.c`, or the platform. */
export const byWhom = (ctx: Pick<ServiceContext, "actor">) => (ctx.actor ? `user ${ctx.actor.email}` : "dynoplane");

/**
 * Writes `app[api]` events (e.g. `Scaled to web@2:Eco by user a@b.c`) after the answer.
 * Callers pass events of changes already committed; a log outage never fails the change.
 */
export function logAppEvents(ctx: Pick<ServiceContext, "env" | "after">, appId: string, texts: string[]): void {
  // What changed is logged once it is committed: the moment to tell the app's webhooks too.
  startWebhookDeliveries(ctx, appId);
  if (!texts.length) return;
  const now = Date.now() * 1000;
  // Distinct microseconds keep the events in order for readers that sort by time.
  const lines = texts.map((text, i) => ({ ts: now + i, source: "app" as const, dyno: "api", text: capLine(text) }));
  ctx.after(
    logChannel(ctx.env, appId)
      .append(lines)
      .then(() => undefined)
      .catch((err) => console.error(JSON.stringify({ log_event_failed: String(err), app_id: appId }))),
  );
}

/** A new release's two lines in the app's log, and its marker on the app's charts. */
export function logRelease(ctx: Pick<ServiceContext, "env" | "after" | "actor">, appId: string, release: { version: number; description: string }): void {
  logAppEvents(ctx, appId, releaseEvents(ctx, release));
  recordEvents(ctx, appId, [releaseEvent(release)]);
}

/** Heroku's two lines for a new release. */
export function releaseEvents(ctx: Pick<ServiceContext, "actor">, release: { version: number; description: string }): string[] {
  const who = byWhom(ctx);
  return [`${release.description} by ${who}`, `Release v${release.version} created by ${who}`];
}
