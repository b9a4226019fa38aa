import type { Context } from "hono";
import { type Database, type DbHandle, openDb } from "../db/client.ts";
import type { Actor, Bindings } from "../env.ts";
import { dispatchEvents } from "./events/outbox.ts";

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
      // What the run changed follows from its events before the run ends.
      await dispatchEvents(db, env).catch((err) => console.error(JSON.stringify({ event_dispatch_failed: String(err) })));
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

/** The account a change is made by, for verbs only a person (or their token) may call. */
export function actingUser(ctx: Pick<ServiceContext, "actor">): Actor {
  if (!ctx.actor) throw new Error("this change is made by an account, and none is signed in");
  return ctx.actor;
}
