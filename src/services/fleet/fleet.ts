import { and, asc, eq, inArray, isNotNull, ne, notInArray, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { dynos, hosts, type HostRow } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import { ONE_OFF_TYPES } from "../../protocol/host.ts";
import { type ChangeBy, emit } from "../events/outbox.ts";
import { memoryOf } from "../dynos/placement.ts";

/**
 * The fleet as an operator runs it: the hosts with what they hold, and draining a host
 * (its dynos move elsewhere one at a time, each new instance up before the old one stops)
 * before it is removed.
 */

/** A host as `dynoplane hosts` and the operator page show it. */
export interface HostView {
  id: string;
  name: string;
  url: string | null;
  state: "up" | "down" | "draining";
  lastHeartbeatAt: Date | null;
  capacityMb: number;
  /** Memory of the dynos placed there that should run. */
  committedMb: number;
  /** Dynos placed there, and those still running there while they move away. */
  dynos: number;
  agentVersion: string | null;
  drainingSince: Date | null;
}

export async function listHosts(db: Database): Promise<HostView[]> {
  const rows = await db.select().from(hosts).orderBy(asc(hosts.name));
  // Counted in the database: a row per host, size and desired state, however many dynos.
  const placed = await db
    .select({ hostId: dynos.hostId, previousHostId: dynos.previousHostId, size: dynos.size, desired: dynos.desired, n: sql<number>`count(*)::int` })
    .from(dynos)
    .where(or(isNotNull(dynos.hostId), isNotNull(dynos.previousHostId)))
    .groupBy(dynos.hostId, dynos.previousHostId, dynos.size, dynos.desired);
  const count = (rows: typeof placed) => rows.reduce((n, d) => n + d.n, 0);
  return rows.map((h) => {
    const here = placed.filter((d) => d.hostId === h.id);
    const leaving = placed.filter((d) => d.previousHostId === h.id);
    return {
      id: h.id,
      name: h.name,
      url: h.url,
      state: h.state === "up" && h.drainingSince ? "draining" : h.state,
      lastHeartbeatAt: h.lastHeartbeatAt,
      capacityMb: h.capacityMb,
      committedMb: here.filter((d) => d.desired !== "stopped" && d.desired !== "sleeping").reduce((n, d) => n + d.n * memoryOf(d.size), 0),
      dynos: count(here) + count(leaving),
      agentVersion: h.agentVersion,
      drainingSince: h.drainingSince,
    };
  });
}

async function hostNamed(db: Database, name: string): Promise<HostRow> {
  const [host] = await db.select().from(hosts).where(eq(hosts.name, name)).limit(1);
  if (!host) throw new ApiError("not_found", `There is no host named ${name}.`);
  return host;
}

/** Who drains a host: an operator's account on the dashboard, or the operator's CLI (no account). */
export type OperatorBy = ChangeBy & { via: "dashboard" | "cli" };

/**
 * Stops placing dynos on a host and starts moving its dynos away (the fleet watch does, one
 * at a time); its `host.draining` event is the audit row, from the dashboard or the CLI alike.
 */
export async function drainHost(db: Database, by: OperatorBy, name: string): Promise<HostRow> {
  const host = await hostNamed(db, name);
  return db.transaction(async (tx) => {
    const [drained] = await tx
      .update(hosts)
      .set({ drainingSince: sql`coalesce(${hosts.drainingSince}, now())`, updatedAt: sql`now()` })
      .where(eq(hosts.id, host.id))
      .returning();
    await emit(tx, by, { type: "host.draining", app: null, data: { host: host.name, via: by.via } });
    return drained!;
  });
}

/** Lets a drained host take dynos again (those already moved stay where they are). */
export async function undrainHost(db: Database, by: OperatorBy, name: string): Promise<HostRow> {
  const host = await hostNamed(db, name);
  return db.transaction(async (tx) => {
    const [undrained] = await tx.update(hosts).set({ drainingSince: null, updatedAt: sql`now()` }).where(eq(hosts.id, host.id)).returning();
    await emit(tx, by, { type: "host.undrained", app: null, data: { host: host.name, via: by.via } });
    return undrained!;
  });
}

/** Forgets a host that runs nothing (drain it first); its secret stops working. */
export async function removeHost(db: Database, name: string): Promise<void> {
  const host = await hostNamed(db, name);
  await db.transaction(async (tx) => {
    const [held] = await tx
      .select({ n: sql<number>`count(*)::int` })
      .from(dynos)
      .where(or(eq(dynos.hostId, host.id), eq(dynos.previousHostId, host.id)));
    if (held!.n > 0) {
      throw new ApiError(
        "invalid_params",
        `Host ${name} still holds ${held!.n} dyno${held!.n === 1 ? "" : "s"}: drain it first (dynoplane hosts:drain ${name}) and wait until it is empty.`,
      );
    }
    await tx.delete(hosts).where(eq(hosts.id, host.id));
  });
}

/**
 * Moves one dyno off each draining host that has none on its way already: a dyno that
 * should run gets a new instance, to be placed elsewhere, while the draining host keeps the
 * old one running (`previousHostId`/`previousInstance`) until the new one is up; a dyno that
 * is asleep or stopped just loses its host. One-off dynos finish where they are. Call it
 * inside the placement transaction, before placing. Returns how many dynos it moved.
 */
export async function moveOffDrainingHosts(db: Database): Promise<number> {
  const draining = await db
    .select({ id: hosts.id })
    .from(hosts)
    .where(and(isNotNull(hosts.drainingSince), eq(hosts.state, "up")));
  let moved = 0;
  for (const host of draining) {
    // Idle rows first: they move without a new instance.
    await db
      .update(dynos)
      .set({ hostId: null, updatedAt: sql`now()` })
      .where(and(eq(dynos.hostId, host.id), ne(dynos.desired, "up"), notInArray(dynos.type, [...ONE_OFF_TYPES])));
    const [onTheWay] = await db.select({ id: dynos.id }).from(dynos).where(eq(dynos.previousHostId, host.id)).limit(1);
    if (onTheWay) continue;
    const [next] = await db
      .select({ id: dynos.id })
      .from(dynos)
      .where(and(eq(dynos.hostId, host.id), eq(dynos.desired, "up"), notInArray(dynos.type, [...ONE_OFF_TYPES])))
      .orderBy(asc(dynos.appId), asc(dynos.name))
      .limit(1);
    if (!next) continue;
    await db
      .update(dynos)
      .set({
        previousHostId: dynos.hostId,
        previousInstance: dynos.instance,
        hostId: null,
        instance: sql`gen_random_uuid()`,
        state: "starting",
        port: null,
        address: null,
        updatedAt: sql`now()`,
      })
      .where(eq(dynos.id, next.id));
    moved++;
  }
  return moved;
}

/**
 * Ends moves that no longer need their old instance: the dyno should not run any more
 * (stopped, asleep), or its old host is down. (A move whose new instance is up ends when
 * its new host reports it, in recordObservedDynos.)
 */
export async function endStaleMoves(db: Database): Promise<void> {
  await db
    .update(dynos)
    .set({ previousHostId: null, previousInstance: null })
    .where(
      and(
        isNotNull(dynos.previousHostId),
        or(ne(dynos.desired, "up"), inArray(dynos.previousHostId, db.select({ id: hosts.id }).from(hosts).where(ne(hosts.state, "up")))),
      ),
    );
}
