import { and, eq, inArray, isNull, lt, notInArray, or, sql } from "drizzle-orm";
import { bytesToBase64Url, sha256Hex } from "../../lib/bytes.ts";
import { DEFAULT_CLOCKS } from "../../lib/clocks.ts";
import type { Database } from "../../db/client.ts";
import { apps, dynos, hosts, type HostRow } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import { emit } from "../events/outbox.ts";
import { type ObservedDyno, ONE_OFF_TYPES } from "../../protocol/host.ts";

export const HOST_SECRET_PREFIX = "dph_";
/** A host that has not sent a heartbeat for this long is down, and its dynos move (HOST_TIMEOUT_S changes it). */
export const HOST_TIMEOUT_MS = DEFAULT_CLOCKS.hostTimeoutMs;
/** How often agents heartbeat, unless HEARTBEAT_INTERVAL_S says otherwise. */
export const HEARTBEAT_INTERVAL_MS = DEFAULT_CLOCKS.heartbeatMs;
/** The name of the platform's one FleetWatch Durable Object (which retires silent hosts on an alarm). */
export const FLEET_WATCH_NAME = "fleet";

/** A new random host secret. */
export const generateHostSecret = () => HOST_SECRET_PREFIX + bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));

/** Registers a host for an operator; returns the secret its agent authenticates with (shown once). */
export async function createHost(db: Database, name: string, secret = generateHostSecret()): Promise<{ host: HostRow; secret: string }> {
  const [host] = await db
    .insert(hosts)
    .values({ name, secretHash: await sha256Hex(secret) })
    .onConflictDoNothing({ target: hosts.name })
    .returning();
  if (!host) throw new ApiError("invalid_params", `A host named ${name} already exists.`);
  return { host, secret };
}

/** The host a secret belongs to, or 401. */
export async function authenticateHost(db: Database, secret: string): Promise<HostRow> {
  const [host] = secret.startsWith(HOST_SECRET_PREFIX)
    ? await db
        .select()
        .from(hosts)
        .where(eq(hosts.secretHash, await sha256Hex(secret)))
        .limit(1)
    : [];
  if (!host) throw new ApiError("unauthorized", "Invalid host credentials.");
  return host;
}

/** Records a heartbeat: the host is up, at `url` (and `rendezvous`), with this capacity. */
export async function touchHost(
  db: Database,
  host: HostRow,
  input: { url: string; rendezvous?: string; session?: string; capacityMb: number; droppedLogLines: number; agentVersion?: string },
) {
  await db
    .update(hosts)
    .set({
      url: input.url,
      ...(input.session ? { agentSession: input.session } : {}),
      ...(input.agentVersion ? { agentVersion: input.agentVersion } : {}),
      rendezvous: input.rendezvous ?? null,
      capacityMb: input.capacityMb,
      state: "up",
      lastHeartbeatAt: sql`now()`,
      droppedLogLines: sql`${hosts.droppedLogLines} + ${input.droppedLogLines}`,
      updatedAt: sql`now()`,
    })
    .where(eq(hosts.id, host.id));
}

/**
 * Applies a host's report of what it runs. Only rows for the dyno's current instance on
 * this host change, so a late report about a replaced instance is ignored; each state that
 * changed is a `dyno.state_changed` event (the app's `dyno` webhooks, a crash's mark on its
 * charts), written in a transaction with that dyno's row alone (a heartbeat never holds
 * several dynos' locks, which placement takes too). Returns the apps whose dynos changed
 * state and how many moves off a draining host this report ended.
 */
export async function recordObservedDynos(db: Database, hostId: string, observed: ObservedDyno[]): Promise<{ changed: string[]; movesEnded: number }> {
  const changedApps = new Set<string>();
  if (!observed.length) return { changed: [], movesEnded: 0 };
  const ids = observed.map((o) => o.id);
  const known = await db
    .select({ id: dynos.id, state: dynos.state, hostId: dynos.hostId, previousHostId: dynos.previousHostId })
    .from(dynos)
    .where(inArray(dynos.id, ids));
  const byId = new Map(known.map((k) => [k.id, k]));
  // Dynos moving here off a draining host that are now up: their moves end with this report.
  const movesEnded = observed.filter((o) => {
    const k = byId.get(o.id);
    return o.state === "up" && k?.hostId === hostId && !!k.previousHostId;
  }).length;
  for (const o of observed) {
    const apply = (tx: Database) => applyObserved(tx, hostId, o, changedApps);
    // A report that changes the dyno's state is recorded with its event; one that does not, on its own.
    const was = byId.get(o.id);
    if (was && was.state !== o.state) await db.transaction(apply);
    else await apply(db);
  }
  return { changed: [...changedApps], movesEnded };
}

/** One dyno's reported state, and its event when the state changed. */
async function applyObserved(db: Database, hostId: string, o: ObservedDyno, changedApps: Set<string>): Promise<void> {
  const [row] = await db
    .update(dynos)
    .set({
      state: o.state,
      port: o.port,
      address: o.address ?? null,
      exitCode: o.exit_code,
      stateChangedAt: sql`case when ${dynos.state} = ${o.state} then ${dynos.stateChangedAt} else now() end`,
      // A moved dyno up on its new host: the old instance on the draining host may stop.
      ...(o.state === "up" ? { previousHostId: null, previousInstance: null } : {}),
      updatedAt: sql`now()`,
    })
    .where(and(eq(dynos.id, o.id), eq(dynos.instance, o.instance), eq(dynos.hostId, hostId), eq(dynos.desired, "up")))
    .returning();
  // A state that changed is a `dyno` event for the app's webhooks (its change time is then this statement's now()).
  if (!row || row.stateChangedAt.getTime() !== row.updatedAt.getTime()) return;
  const [app] = await db.select({ id: apps.id, name: apps.name }).from(apps).where(eq(apps.id, row.appId)).limit(1);
  if (!app) return;
  const data = {
    id: row.id,
    name: row.name,
    type: row.type,
    state: row.state,
    size: row.size,
    command: row.command,
    app,
    updated_at: row.updatedAt.toISOString(),
  };
  await emit(
    db,
    { actor: null },
    {
      type: "dyno.state_changed",
      app,
      data: { name: row.name, state: row.state, crashed: row.state === "crashed", exit_code: row.exitCode, at: row.stateChangedAt.getTime() },
      webhooks: [{ include: "dyno", action: "update", data }],
    },
  );
  changedApps.add(app.id);
}

/** How long a one-off dyno placed on a host may go unreported before it counts as gone. */
const ONE_OFF_GRACE_S = 30;

/** A one-off dyno that was forgotten without its host reporting its end. */
export interface VanishedOneOff {
  id: string;
  appId: string;
  appName: string;
  name: string;
  type: string;
  releaseId: string;
}

/**
 * Forgets the one-off dynos of a host that are over: reported ended (their command exited
 * or they were stopped), or no longer reported at all: at once when the host's agent
 * restarted (`restarted`: a new agent kills whatever the old one ran), else after a grace
 * period (a start command that never arrived). They are never run again; their lines stay
 * in the app's log. Returns those that vanished unreported, for the caller to say so.
 */
export async function endOneOffDynos(db: Database, hostId: string, observed: ObservedDyno[], restarted = false): Promise<VanishedOneOff[]> {
  const ended = observed.filter((o) => o.state === "down" || o.state === "crashed").map((o) => o.id);
  const reported = observed.map((o) => o.id);
  const unreported = reported.length ? notInArray(dynos.id, reported) : undefined;
  const gone = await db
    .delete(dynos)
    .where(
      and(
        eq(dynos.hostId, hostId),
        inArray(dynos.type, [...ONE_OFF_TYPES]),
        or(
          ended.length ? inArray(dynos.id, ended) : undefined,
          restarted ? (unreported ?? sql`true`) : and(unreported, lt(dynos.createdAt, sql`now() - make_interval(secs => ${ONE_OFF_GRACE_S})`)),
        ),
      ),
    )
    .returning({
      id: dynos.id,
      appId: dynos.appId,
      appName: sql<string>`(select ${apps.name} from ${apps} where ${apps.id} = ${dynos.appId})`,
      name: dynos.name,
      type: dynos.type,
      releaseId: dynos.releaseId,
    });
  return gone.filter((d) => !ended.includes(d.id));
}

/** Marks hosts without a recent heartbeat as down: their one-off dynos end, the others are unassigned and placed again. */
export async function retireSilentHosts(db: Database, timeoutMs = HOST_TIMEOUT_MS): Promise<number> {
  const dead = await db
    .update(hosts)
    .set({ state: "down", updatedAt: sql`now()` })
    .where(and(eq(hosts.state, "up"), or(isNull(hosts.lastHeartbeatAt), lt(hosts.lastHeartbeatAt, sql`now() - make_interval(secs => ${timeoutMs / 1000})`))))
    .returning({ id: hosts.id });
  for (const h of dead) {
    // A one-off dyno died with its host and is never run again; the others move.
    await db.delete(dynos).where(and(eq(dynos.hostId, h.id), inArray(dynos.type, [...ONE_OFF_TYPES])));
    await db
      .update(dynos)
      .set({ hostId: null, state: "starting", port: null, instance: sql`gen_random_uuid()`, updatedAt: sql`now()` })
      .where(eq(dynos.hostId, h.id));
  }
  return dead.length;
}
