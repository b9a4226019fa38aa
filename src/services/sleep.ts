import { and, eq, inArray, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { apps, dynos } from "../db/schema/index.ts";
import { noChanges, type DynoChanges } from "./dynos.ts";
import { placeDynos } from "./placement.ts";

/** Eco apps sleep after this long without a routed request. */
export const IDLE_AFTER_MS = 30 * 60 * 1000;
const BATCH = 100;

/**
 * Puts eco apps with no request for 30 minutes to sleep: their dynos stop and show
 * `idle` until the next request wakes them. Bounded and idempotent.
 */
export async function sleepIdleApps(db: Database, now: Date): Promise<{ apps: number; changes: DynoChanges }> {
  const cutoff = new Date(now.getTime() - IDLE_AFTER_MS);
  const idle = await db
    .selectDistinct({ id: apps.id })
    .from(apps)
    .innerJoin(dynos, and(eq(dynos.appId, apps.id), eq(dynos.type, "web"), eq(dynos.desired, "up")))
    .where(and(eq(apps.processTier, "eco"), or(lt(apps.lastRequestAt, cutoff), and(isNull(apps.lastRequestAt), lt(dynos.createdAt, cutoff)))))
    .limit(BATCH);
  const changes = noChanges();
  if (!idle.length) return { apps: 0, changes };
  const slept = await db
    .update(dynos)
    .set({ desired: "sleeping", state: "idle", port: null, stateChangedAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      and(
        inArray(
          dynos.appId,
          idle.map((a) => a.id),
        ),
        eq(dynos.desired, "up"),
        sql`${dynos.type} <> 'run'`,
      ),
    )
    .returning({ id: dynos.id, hostId: dynos.hostId });
  changes.stop.push(...slept.map((d) => ({ dynoId: d.id, hostId: d.hostId })));
  return { apps: idle.length, changes };
}

/** Wakes a sleeping app: its dynos are due to start again, each as a new instance. */
export async function wakeApp(db: Database, appId: string): Promise<DynoChanges> {
  return db.transaction(async (tx) => {
    const woken = await tx
      .update(dynos)
      .set({ desired: "up", state: "starting", instance: sql`gen_random_uuid()`, stateChangedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(dynos.appId, appId), eq(dynos.desired, "sleeping")))
      .returning({ id: dynos.id });
    await tx.update(apps).set({ lastRequestAt: sql`now()` }).where(eq(apps.id, appId));
    await placeDynos(tx);
    return { start: woken.map((d) => d.id), stop: [] };
  });
}
