import { and, eq, inArray, isNull, ne, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { dynos, hosts } from "../db/schema/index.ts";
import { DYNO_SIZES } from "../protocol/host.ts";

export const memoryOf = (size: string) => DYNO_SIZES[size]?.memoryMb ?? 512;

/** The host with the most free memory that fits `memoryMb`, or null when none does. Pure. */
export function chooseHost(free: Map<string, number>, memoryMb: number): string | null {
  let best: string | null = null;
  let bestFree = -Infinity;
  for (const [id, mb] of free) {
    if (mb >= memoryMb && mb > bestFree) {
      best = id;
      bestFree = mb;
    }
  }
  return best;
}

/** Free memory on every live host: capacity less the dynos placed there that should run. */
export async function freeMemory(db: Database): Promise<Map<string, number>> {
  const up = await db.select({ id: hosts.id, capacityMb: hosts.capacityMb }).from(hosts).where(eq(hosts.state, "up"));
  const free = new Map(up.map((h) => [h.id, h.capacityMb]));
  if (!up.length) return free;
  const placed = await db
    .select({ hostId: dynos.hostId, size: dynos.size })
    .from(dynos)
    .where(and(inArray(dynos.hostId, [...free.keys()]), ne(dynos.desired, "stopped"), ne(dynos.desired, "sleeping")));
  for (const d of placed) free.set(d.hostId!, (free.get(d.hostId!) ?? 0) - memoryOf(d.size));
  return free;
}

/** The advisory lock key that serializes placement (any fixed number: "dyno" in ASCII). */
const PLACEMENT_LOCK = sql.raw(String(0x64796e6f));

/**
 * Places dynos that have no host (new, or moved off a silent host) by free capacity,
 * in a bounded batch. Call it inside a transaction. Returns the host ids that received dynos.
 */
export async function placeDynos(db: Database, limit = 200): Promise<Set<string>> {
  // One placement at a time, platform-wide, until this transaction ends: another would count
  // the same free memory and over-commit a host.
  await db.execute(sql`select pg_advisory_xact_lock(${PLACEMENT_LOCK})`);
  const unplaced = await db
    .select({ id: dynos.id, size: dynos.size })
    .from(dynos)
    .where(and(isNull(dynos.hostId), eq(dynos.desired, "up")))
    .limit(limit);
  const touched = new Set<string>();
  if (!unplaced.length) return touched;
  const free = await freeMemory(db);
  for (const d of unplaced) {
    const hostId = chooseHost(free, memoryOf(d.size));
    if (!hostId) continue;
    free.set(hostId, free.get(hostId)! - memoryOf(d.size));
    await db
      .update(dynos)
      .set({ hostId })
      .where(and(eq(dynos.id, d.id), isNull(dynos.hostId)));
    touched.add(hostId);
  }
  return touched;
}
