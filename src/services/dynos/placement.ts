import { and, eq, inArray, isNotNull, isNull, ne, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { dynos, hosts } from "../../db/schema/index.ts";
import { DYNO_SIZES } from "../../protocol/host.ts";

export const memoryOf = (size: string) => DYNO_SIZES[size]?.memoryMb ?? 512;

/**
 * The host for a dyno: among the hosts it fits on, the one running the fewest dynos of the
 * same app and process type (`siblings`, by host), so that one host's loss takes as few of
 * them as capacity allows; then the one with the most free memory. Null when none has room. Pure.
 */
export function chooseHost(free: ReadonlyMap<string, number>, memoryMb: number, siblings: ReadonlyMap<string, number> = new Map()): string | null {
  let best: string | null = null;
  let bestSiblings = Infinity;
  let bestFree = -Infinity;
  for (const [id, mb] of free) {
    if (mb < memoryMb) continue;
    const n = siblings.get(id) ?? 0;
    if (n < bestSiblings || (n === bestSiblings && mb > bestFree)) {
      best = id;
      bestSiblings = n;
      bestFree = mb;
    }
  }
  return best;
}

/** Free memory on every host that takes dynos (up, not draining): capacity less the dynos placed there that should run. */
export async function freeMemory(db: Database): Promise<Map<string, number>> {
  const up = await db
    .select({ id: hosts.id, capacityMb: hosts.capacityMb })
    .from(hosts)
    .where(and(eq(hosts.state, "up"), isNull(hosts.drainingSince)));
  const free = new Map(up.map((h) => [h.id, h.capacityMb]));
  if (!up.length) return free;
  // Counted per host and size in the database: a row per pair, however many dynos there are.
  const placed = await db
    .select({ hostId: dynos.hostId, size: dynos.size, n: sql<number>`count(*)::int` })
    .from(dynos)
    .where(and(inArray(dynos.hostId, [...free.keys()]), ne(dynos.desired, "stopped"), ne(dynos.desired, "sleeping")))
    .groupBy(dynos.hostId, dynos.size);
  for (const d of placed) free.set(d.hostId!, (free.get(d.hostId!) ?? 0) - d.n * memoryOf(d.size));
  return free;
}

/** The advisory lock key that serializes placement (any fixed number: "dyno" in ASCII). */
const PLACEMENT_LOCK = sql.raw(String(0x64796e6f));

/**
 * Places dynos that have no host (new, or moved off a silent host), apart from their app's
 * other dynos of the same type where capacity allows, then by free memory (see chooseHost),
 * in a bounded batch. Call it inside a transaction. Returns the host ids that received dynos.
 */
export async function placeDynos(db: Database, limit = 200): Promise<Set<string>> {
  // One placement at a time, platform-wide, until this transaction ends: another would count
  // the same free memory and over-commit a host.
  await db.execute(sql`select pg_advisory_xact_lock(${PLACEMENT_LOCK})`);
  const unplaced = await db
    .select({ id: dynos.id, size: dynos.size, appId: dynos.appId, type: dynos.type })
    .from(dynos)
    .where(and(isNull(dynos.hostId), eq(dynos.desired, "up")))
    .orderBy(dynos.appId, dynos.type, dynos.name)
    .limit(limit);
  const touched = new Set<string>();
  if (!unplaced.length) return touched;
  const free = await freeMemory(db);
  const siblings = await placedSiblings(db, [...new Set(unplaced.map((d) => d.appId))]);
  for (const d of unplaced) {
    const key = `${d.appId}/${d.type}`;
    const mine = siblings.get(key) ?? new Map<string, number>();
    const hostId = chooseHost(free, memoryOf(d.size), mine);
    if (!hostId) continue;
    free.set(hostId, free.get(hostId)! - memoryOf(d.size));
    mine.set(hostId, (mine.get(hostId) ?? 0) + 1);
    siblings.set(key, mine);
    await db
      .update(dynos)
      .set({ hostId })
      .where(and(eq(dynos.id, d.id), isNull(dynos.hostId)));
    touched.add(hostId);
  }
  return touched;
}

/** Per app and process type (`<app id>/<type>`), how many of its dynos each host runs or will run. */
async function placedSiblings(db: Database, appIds: string[]): Promise<Map<string, Map<string, number>>> {
  const rows = await db
    .select({ appId: dynos.appId, type: dynos.type, hostId: dynos.hostId, n: sql<number>`count(*)::int` })
    .from(dynos)
    .where(and(inArray(dynos.appId, appIds), isNotNull(dynos.hostId), ne(dynos.desired, "stopped"), ne(dynos.desired, "sleeping")))
    .groupBy(dynos.appId, dynos.type, dynos.hostId);
  const out = new Map<string, Map<string, number>>();
  for (const r of rows) {
    const key = `${r.appId}/${r.type}`;
    const byHost = out.get(key) ?? new Map<string, number>();
    byHost.set(r.hostId!, r.n);
    out.set(key, byHost);
  }
  return out;
}
