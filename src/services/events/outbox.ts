import { and, asc, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { type DomainEventRow, domainEvents, type WebhookEntity } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { capLine } from "../../logs/lines.ts";
import { recordAudit } from "./audit.ts";
import type { DynoChanges } from "../dynos/dynos.ts";
import { commandConfig, pushDynoChanges } from "../dynos/host-commands.ts";
import { logChannel } from "../logs/logs.ts";
import { appMetrics } from "../metrics/metrics.ts";
import { deliverDue, recordWebhookEvent } from "../webhooks/webhooks.ts";
import { type EventData, type EventType, effectsOf, type RecordedEvent } from "./catalogue.ts";

/**
 * The transactional outbox. A verb records what changed with `emit`, inside the
 * transaction of the change: the event row, and what follows from it inside the database
 * (its audit row, the app's webhook events and their pending deliveries), commit or roll
 * back with the change. Everything outside (the app's log lines, its chart marks, the
 * webhook deliveries, the commands to hosts) is `dispatchEvents`'s, after the commit: on
 * the request's own connection once it has answered, in the heartbeat and the scheduled
 * run, and at once where a caller must see it done (a push waits for its build's). An
 * effect handed on twice is applied once (log channels and metrics objects remember the
 * event's key), so a dispatcher that dies mid-way only leaves its claim to expire.
 */

/** One change, as a verb records it. */
export interface Change<T extends EventType = EventType> {
  type: T;
  /** The app it changed (null for account and fleet changes). */
  app: { id: string; name: string } | null;
  data: EventData[T];
  /** The app's resources it changed, for the app's webhooks: entity, action and the resource as the API shows it. */
  webhooks?: { include: WebhookEntity; action: "create" | "update" | "destroy"; data: Record<string, unknown> }[];
  /** Dynos to start or stop: their hosts are told. */
  dynos?: DynoChanges;
}

/** Who made a change: an account (or its token), or the platform (null). */
export interface ChangeBy {
  actor: Pick<Actor, "accountId" | "email"> | null;
  requestId?: string | null;
}

/** Changes the platform observes or makes on its own (a host's report, sleep and wake): no audit row. */
const OBSERVED: ReadonlySet<EventType> = new Set([
  "dyno.state_changed",
  "dyno.vanished",
  "rollout.advanced",
  "app.slept",
  "app.woken",
  "eco.exhausted",
  "addon.storage_limited",
]);

/** Records a change's event and its effects inside the database, in the caller's transaction. */
export async function emit<T extends EventType>(tx: Database, by: ChangeBy, change: Change<T>): Promise<void> {
  const dynos = change.dynos && (change.dynos.start.length || change.dynos.stop.length) ? change.dynos : null;
  await tx.insert(domainEvents).values({
    type: change.type,
    appId: change.app?.id ?? null,
    data: change.data as Record<string, unknown>,
    actorEmail: by.actor?.email ?? null,
    dynos,
    requestId: by.requestId ?? null,
  });
  if (!OBSERVED.has(change.type)) {
    await recordAudit(tx, {
      actor: by.actor,
      action: change.type,
      app: change.app ?? undefined,
      details: change.data as Record<string, unknown>,
      requestId: by.requestId,
    });
  }
  for (const w of change.webhooks ?? []) if (change.app) await recordWebhookEvent(tx, change.app, w.include, w.action, w.data, by.actor);
}

/** How long a dispatcher holds the events it took; past it, another takes them again. */
const CLAIM_S = 60;
/** Attempts at an event's effects before they are given up (and the reason kept on the row). */
const MAX_ATTEMPTS = 5;
/** Events taken at once. */
const BATCH = 100;

/**
 * Carries out the effects of undispatched events (of one app, or all), oldest first, until
 * none is left or `rounds` batches are done; returns how many were dispatched. Each event
 * is claimed first, so two dispatchers never work on the same one at once.
 */
export async function dispatchEvents(db: Database, env: Bindings, o: { appId?: string; rounds?: number } = {}): Promise<number> {
  let done = 0;
  for (let round = 0; round < (o.rounds ?? 10); round++) {
    const claimed = await claim(db, o.appId);
    if (!claimed.length) break;
    done += await dispatchBatch(db, env, claimed);
    if (claimed.length < BATCH) break;
  }
  return done;
}

async function claim(db: Database, appId?: string): Promise<DomainEventRow[]> {
  const rows = await db
    .update(domainEvents)
    .set({ claimedUntil: sql`now() + make_interval(secs => ${CLAIM_S})`, attempts: sql`${domainEvents.attempts} + 1` })
    .where(
      inArray(
        domainEvents.id,
        db
          .select({ id: domainEvents.id })
          .from(domainEvents)
          .where(
            and(
              isNull(domainEvents.dispatchedAt),
              or(isNull(domainEvents.claimedUntil), lt(domainEvents.claimedUntil, sql`now()`)),
              appId ? eq(domainEvents.appId, appId) : undefined,
            ),
          )
          .orderBy(asc(domainEvents.id))
          .limit(BATCH)
          .for("update", { skipLocked: true }),
      ),
    )
    .returning();
  return rows.sort((a, b) => a.id - b.id);
}

async function dispatchBatch(db: Database, env: Bindings, rows: DomainEventRow[]): Promise<number> {
  const failed = new Map<number, string>();
  // One app's effects in order; apps side by side.
  const byApp = new Map<string | null, DomainEventRow[]>();
  for (const r of rows) byApp.set(r.appId, [...(byApp.get(r.appId) ?? []), r]);
  await Promise.all(
    [...byApp].map(async ([appId, events]) => {
      for (const row of events) {
        try {
          await applyOutside(env, row);
        } catch (err) {
          failed.set(row.id, String(err));
        }
      }
      if (appId) await deliverDue(db, env, { appId }).catch((err) => console.error(JSON.stringify({ webhook_delivery_failed: String(err), app_id: appId })));
    }),
  );
  const pushes = rows.filter((r) => r.dynos && !failed.has(r.id));
  if (pushes.length) {
    const changes: DynoChanges = { start: pushes.flatMap((r) => r.dynos!.start), stop: pushes.flatMap((r) => r.dynos!.stop) };
    // A command that does not arrive is harmless: the host's next heartbeat converges anyway.
    await pushDynoChanges(db, commandConfig(env), changes).catch((err) => console.error(JSON.stringify({ push_failed: String(err) })));
  }
  const ok = rows.filter((r) => !failed.has(r.id)).map((r) => r.id);
  if (ok.length) await db.update(domainEvents).set({ dispatchedAt: sql`now()`, claimedUntil: null }).where(inArray(domainEvents.id, ok));
  for (const [id, error] of failed) {
    const row = rows.find((r) => r.id === id)!;
    const givenUp = row.attempts >= MAX_ATTEMPTS;
    console.error(JSON.stringify({ event_effects_failed: id, type: row.type, attempt: row.attempts, given_up: givenUp, error }));
    await db
      .update(domainEvents)
      .set(givenUp ? { dispatchedAt: sql`now()`, claimedUntil: null, error } : { error })
      .where(eq(domainEvents.id, id));
  }
  return ok.length;
}

/** An event's lines and chart marks, keyed by the event so that a repeat is applied once. */
async function applyOutside(env: Bindings, row: DomainEventRow): Promise<void> {
  if (!row.appId) return;
  const event = row as unknown as RecordedEvent;
  const { lines, chart } = effectsOf(event);
  const key = `event:${row.id}`;
  const at = row.createdAt.getTime();
  if (lines.length) {
    // Distinct microseconds keep one event's lines in order for readers that sort by time.
    await logChannel(env, row.appId).appendOnce(
      key,
      lines.map((l, i) => ({ ts: at * 1000 + i, source: l.source, dyno: l.dyno, text: capLine(l.text) })),
    );
  }
  const metrics = chart.length ? appMetrics(env, row.appId) : null;
  if (metrics) await metrics.ingestOnce(key, { events: chart.map((m) => ({ ...m, t: m.t ?? at })) });
}

/** Forgets dispatched events older than a week (the scheduled run's), at most 10,000 a run. */
export async function pruneEvents(db: Database, now: Date): Promise<{ pruned: number }> {
  const cutoff = new Date(now.getTime() - 7 * 24 * 3600 * 1000);
  const gone = await db
    .delete(domainEvents)
    .where(
      inArray(
        domainEvents.id,
        db
          .select({ id: domainEvents.id })
          .from(domainEvents)
          .where(and(sql`${domainEvents.dispatchedAt} is not null`, lt(domainEvents.createdAt, cutoff)))
          .limit(10_000),
      ),
    )
    .returning({ id: domainEvents.id });
  return { pruned: gone.length };
}
