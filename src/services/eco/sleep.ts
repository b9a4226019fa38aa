import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { accounts, apps, dynos } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { noChanges, type DynoChanges } from "../dynos/dynos.ts";
import { ecoExhausted } from "./eco.ts";
import { placeDynos } from "../dynos/placement.ts";
import { emit } from "../events/outbox.ts";

/** Eco apps sleep after this long without a routed request (Heroku's 30 minutes). */
export const IDLE_AFTER_MS = 30 * 60 * 1000;
const BATCH = 500;

/** The idle time before eco apps sleep: `ECO_IDLE_MINUTES` (a smaller one lets a local platform show it), else 30 minutes. */
export function idleAfterMs(env: Pick<Bindings, "ECO_IDLE_MINUTES">): number {
  const minutes = Number(env.ECO_IDLE_MINUTES);
  return env.ECO_IDLE_MINUTES && Number.isFinite(minutes) && minutes > 0 ? minutes * 60_000 : IDLE_AFTER_MS;
}

/** A dyno put to sleep. */
export interface SleptDyno {
  dynoId: string;
  hostId: string | null;
  appId: string;
  name: string;
}

/**
 * Puts eco apps with no request for `idleMs` to sleep: their dynos stop and show `idle`
 * until the next request wakes them; each app's `app.slept` event says `Idling` in its log
 * (its host then writes the stop and `State changed from up to down`) and tells the hosts.
 * One-off dynos run on. Bounded and idempotent.
 */
export async function sleepIdleApps(db: Database, now: Date, idleMs = IDLE_AFTER_MS): Promise<{ apps: number; slept: SleptDyno[]; changes: DynoChanges }> {
  const cutoff = new Date(now.getTime() - idleMs);
  const idle = await db
    .selectDistinct({ id: apps.id, name: apps.name })
    .from(apps)
    .innerJoin(dynos, and(eq(dynos.appId, apps.id), eq(dynos.type, "web"), eq(dynos.desired, "up")))
    .where(and(eq(apps.processTier, "eco"), or(lt(apps.lastRequestAt, cutoff), and(isNull(apps.lastRequestAt), lt(dynos.createdAt, cutoff)))))
    .limit(BATCH);
  const changes = noChanges();
  if (!idle.length) return { apps: 0, slept: [], changes };
  return db.transaction(async (tx) => {
    const slept = await tx
      .update(dynos)
      .set({ desired: "sleeping", state: "idle", port: null, stateChangedAt: sql`dynoplane_clock()`, updatedAt: sql`now()` })
      .where(
        and(
          inArray(
            dynos.appId,
            idle.map((a) => a.id),
          ),
          eq(dynos.desired, "up"),
          sql`${dynos.type} not in ('run', 'release')`,
        ),
      )
      .returning({ dynoId: dynos.id, hostId: dynos.hostId, appId: dynos.appId, name: dynos.name });
    changes.stop.push(...slept.map((d) => ({ dynoId: d.dynoId, hostId: d.hostId })));
    for (const app of idle) {
      const mine = slept.filter((d) => d.appId === app.id);
      if (!mine.length) continue;
      await emit(
        tx,
        { actor: null },
        {
          type: "app.slept",
          app,
          data: { dynos: mine.map((d) => d.name), at: now.getTime() },
          dynos: { start: [], stop: mine.map((d) => ({ dynoId: d.dynoId, hostId: d.hostId })) },
        },
      );
    }
    return { apps: idle.length, slept, changes };
  });
}

/**
 * Wakes a sleeping app: its dynos are due to start again, each as a new instance, and its
 * `app.woken` event tells their hosts. Null, and nothing wakes, while its owner's eco dyno
 * hours are spent.
 */
export async function wakeApp(db: Database, appId: string, now = new Date()): Promise<DynoChanges | null> {
  return db.transaction(async (tx) => {
    const [owner] = await tx
      .select({ name: apps.name, ecoExhaustedUntil: accounts.ecoExhaustedUntil })
      .from(apps)
      .innerJoin(accounts, eq(accounts.id, apps.ownerId))
      .where(eq(apps.id, appId));
    if (owner && ecoExhausted(owner, now)) return null;
    const woken = await tx
      .update(dynos)
      .set({ desired: "up", state: "starting", instance: sql`gen_random_uuid()`, stateChangedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(dynos.appId, appId), eq(dynos.desired, "sleeping")))
      .returning({ id: dynos.id });
    await tx
      .update(apps)
      .set({ lastRequestAt: sql`greatest(${apps.lastRequestAt}, now())` })
      .where(eq(apps.id, appId));
    await placeDynos(tx);
    const changes: DynoChanges = { start: woken.map((d) => d.id), stop: [] };
    if (owner && woken.length)
      await emit(tx, { actor: null }, { type: "app.woken", app: { id: appId, name: owner.name }, data: { dynos: woken.length }, dynos: changes });
    return changes;
  });
}
