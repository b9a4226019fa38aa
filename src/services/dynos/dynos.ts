import { and, asc, desc, eq, inArray, isNotNull, notInArray, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, dynos, formations, releases, type AppRow, type DynoRow, type ReleaseRow } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import { type DesiredDyno, isOneOffType, ONE_OFF_TYPES } from "../../protocol/host.ts";
import type { ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";
import { memoryOf } from "./placement.ts";

/** What changed for host agents: dynos to (re)start and dynos to stop, by host. */
export interface DynoChanges {
  start: string[];
  stop: Array<{ dynoId: string; hostId: string | null }>;
}

export const noChanges = (): DynoChanges => ({ start: [], stop: [] });

/** The newest successful release that has a slug: what dynos run. */
export async function runningRelease(db: Database, appId: string): Promise<ReleaseRow | null> {
  const [row] = await db
    .select()
    .from(releases)
    .where(and(eq(releases.appId, appId), eq(releases.status, "succeeded"), isNotNull(releases.slugId)))
    .orderBy(desc(releases.version))
    .limit(1);
  return row ?? null;
}

const dynoNumber = (name: string) => Number(name.slice(name.lastIndexOf(".") + 1));

/**
 * How many of a process type's serving dynos a release replaces at once: half of them,
 * rounded up. The rest serve on, on the release before, until those are up (see syncDynos).
 */
export const rolloutBatch = (quantity: number) => Math.max(1, Math.ceil(quantity / 2));

/**
 * Makes an app's dynos match its formation and current release: creates `type.N` up to
 * each quantity, deletes the rest, and (with `restart`, or when the release, command or
 * size differ) gives a dyno a new instance so its host replaces the process.
 *
 * A release rolls through the dynos that are up in batches (`rolloutBatch`): a batch is
 * replaced only while fewer than a batch of the type's dynos on the new release are not up
 * yet, so the others keep serving the release before, and a release whose dynos crash stops
 * after its first batch. Each heartbeat that brings a dyno of the app up calls this again
 * (`advanceRollouts`) for the next batch. Dynos that do not serve are replaced at once.
 */
export async function syncDynos(tx: Database, app: AppRow, opts: { restart?: boolean } = {}): Promise<DynoChanges> {
  const changes = noChanges();
  const release = await runningRelease(tx, app.id);
  const wanted = release ? await tx.select().from(formations).where(eq(formations.appId, app.id)) : [];
  const existing = await tx
    .select()
    .from(dynos)
    .where(and(eq(dynos.appId, app.id), notInArray(dynos.type, [...ONE_OFF_TYPES])));
  const keep = new Set<string>();
  const serving = (d: DynoRow) => d.desired === "up" && d.state === "up";
  for (const f of wanted) {
    const batch = rolloutBatch(f.quantity);
    // The batch on its way: dynos of this type replaced for this release and not up yet.
    let rolling = existing.filter((d) => d.type === f.type && d.releaseId === release!.id && d.desired === "up" && d.state !== "up").length;
    for (let n = 1; n <= f.quantity; n++) {
      const name = `${f.type}.${n}`;
      const current = existing.find((d) => d.name === name);
      if (!current) {
        const [row] = await tx
          .insert(dynos)
          .values({ appId: app.id, releaseId: release!.id, name, type: f.type, command: f.command, size: f.size })
          .returning({ id: dynos.id });
        changes.start.push(row!.id);
        continue;
      }
      keep.add(current.id);
      const stale = current.releaseId !== release!.id || current.command !== f.command || current.size !== f.size;
      if (opts.restart || stale || current.desired === "stopped") {
        if (serving(current)) {
          // Serving on the release before until a batch's room comes (a later call).
          if (rolling >= batch) continue;
          rolling++;
        }
        await tx
          .update(dynos)
          .set({
            releaseId: release!.id,
            command: f.command,
            size: f.size,
            instance: sql`gen_random_uuid()`,
            desired: "up",
            state: "starting",
            updatedAt: sql`now()`,
          })
          .where(eq(dynos.id, current.id));
        changes.start.push(current.id);
      }
    }
  }
  const gone = existing.filter((d) => !keep.has(d.id) && !changes.start.includes(d.id));
  if (gone.length) {
    await tx.delete(dynos).where(
      inArray(
        dynos.id,
        gone.map((d) => d.id),
      ),
    );
    changes.stop.push(...gone.map((d) => ({ dynoId: d.id, hostId: d.hostId })));
  }
  return changes;
}

/**
 * Takes the releases of the given apps one batch further (see syncDynos): called when a
 * heartbeat changed their dynos' states, and by the fleet watch for any roll left waiting.
 */
export async function advanceRollouts(db: Database, appIds: string[]): Promise<DynoChanges> {
  const changes = noChanges();
  for (const appId of appIds) {
    const step = await db.transaction(async (tx) => {
      const [app] = await tx.select().from(apps).where(eq(apps.id, appId)).for("update");
      const step = app ? await syncDynos(tx, app) : noChanges();
      if (app && (step.start.length || step.stop.length)) await emit(tx, { actor: null }, { type: "rollout.advanced", app, data: {}, dynos: step });
      return step;
    });
    changes.start.push(...step.start);
    changes.stop.push(...step.stop);
  }
  return changes;
}

/** Apps with dynos of the formation that are up on a release other than the one the app runs: rolls under way. */
export async function appsRolling(db: Database): Promise<string[]> {
  const current = db
    .select({ id: releases.id })
    .from(releases)
    .where(and(eq(releases.appId, dynos.appId), eq(releases.status, "succeeded"), isNotNull(releases.slugId)))
    .orderBy(desc(releases.version))
    .limit(1);
  const rows = await db
    .selectDistinct({ appId: dynos.appId })
    .from(dynos)
    .where(and(eq(dynos.desired, "up"), eq(dynos.state, "up"), notInArray(dynos.type, [...ONE_OFF_TYPES]), sql`${dynos.releaseId} <> (${current})`));
  return rows.map((r) => r.appId);
}

export async function listDynos(db: Database, appId: string): Promise<Array<DynoRow & { releaseVersion: number }>> {
  const rows = await db
    .select({ dyno: dynos, releaseVersion: releases.version })
    .from(dynos)
    .innerJoin(releases, eq(releases.id, dynos.releaseId))
    .where(eq(dynos.appId, appId))
    .orderBy(asc(dynos.type), asc(dynos.name));
  return rows
    .map((r) => ({ ...r.dyno, releaseVersion: r.releaseVersion }))
    .sort((a, b) => a.type.localeCompare(b.type) || dynoNumber(a.name) - dynoNumber(b.name));
}

/** A dyno by name (`web.1`) or id. */
export async function getDyno(db: Database, appId: string, nameOrId: string) {
  const all = await listDynos(db, appId);
  const dyno = all.find((d) => d.name === nameOrId || d.id === nameOrId);
  if (!dyno) throw new ApiError("not_found", `Couldn't find that dyno.`, "dyno");
  return dyno;
}

/**
 * The dynos a selector names: all (undefined), one by name or id, or a whole process
 * type (`ps:restart web` sends the type in the dyno slot).
 */
export async function selectDynos(db: Database, appId: string, selector?: string): Promise<DynoRow[]> {
  const all = await db.select().from(dynos).where(eq(dynos.appId, appId));
  if (selector === undefined) return all;
  const picked = all.filter((d) => d.name === selector || d.id === selector || d.type === selector);
  if (!picked.length) throw new ApiError("not_found", `Couldn't find that dyno.`, "dyno");
  return picked;
}

/**
 * Restarts an app's dynos (`heroku ps:restart [web|web.1]`): all of them, one, or a
 * process type; each gets a new instance, replacing its process. The hosts are told and
 * the app's log says `Restart web by user ...`.
 */
export async function restartDynos(ctx: ServiceContext, app: AppRow, selector?: string): Promise<void> {
  await replaceDynos(ctx, app, selector, "restart");
}

/**
 * Stops an app's dynos (`heroku ps:stop web.1`, `ps:kill`, `ps:stop -p web`), as Heroku does:
 * a one-off dyno ends, and a dyno of the formation ends its process and is started again
 * (the formation still asks for it), so `heroku ps:wait` sees it up again. The hosts are told
 * and the app's log says `Stop web.1 by user ...`.
 */
export async function stopDynos(ctx: ServiceContext, app: AppRow, selector: string): Promise<void> {
  await replaceDynos(ctx, app, selector, "stop");
}

/** Ends one-off dynos and gives formation dynos a new instance: the restart and stop verbs. */
async function replaceDynos(ctx: ServiceContext, app: AppRow, selector: string | undefined, verb: "restart" | "stop"): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const changes = noChanges();
    for (const d of await selectDynos(tx, app.id, selector)) {
      // A one-off dyno is not run again: restarting or stopping it ends it, as on Heroku.
      if (isOneOffType(d.type)) {
        await tx.update(dynos).set({ desired: "stopped", state: "down", port: null, updatedAt: sql`now()` }).where(eq(dynos.id, d.id));
        changes.stop.push({ dynoId: d.id, hostId: d.hostId });
        continue;
      }
      await tx.update(dynos).set({ instance: sql`gen_random_uuid()`, desired: "up", state: "starting", updatedAt: sql`now()` }).where(eq(dynos.id, d.id));
      changes.start.push(d.id);
    }
    if (verb === "restart") await emit(tx, ctx, { type: "dynos.restarted", app, data: { selector: selector ?? null }, dynos: changes });
    else await emit(tx, ctx, { type: "dynos.stopped", app, data: { selector: selector! }, dynos: changes });
  });
}

/** What one host should run: its placed dynos that should be up, with their release's config. */
export async function desiredForHost(db: Database, hostId: string, bootTimeoutS: number, onlyIds?: string[]): Promise<DesiredDyno[]> {
  const rows = await db
    .select({ dyno: dynos, appName: apps.name, version: releases.version, slugId: releases.slugId, config: releases.config })
    .from(dynos)
    .innerJoin(releases, eq(releases.id, dynos.releaseId))
    .innerJoin(apps, eq(apps.id, dynos.appId))
    .where(
      and(
        // A dyno moving off this host (a drain) runs on here as its old instance until it is up elsewhere.
        or(eq(dynos.hostId, hostId), eq(dynos.previousHostId, hostId)),
        eq(dynos.desired, "up"),
        isNotNull(releases.slugId),
        // One-off dynos are started by command only (`onlyIds`), never by a heartbeat.
        onlyIds ? inArray(dynos.id, onlyIds) : notInArray(dynos.type, [...ONE_OFF_TYPES]),
      ),
    );
  return rows.map(({ dyno, appName, version, slugId, config }) => ({
    id: dyno.id,
    instance: dyno.hostId !== hostId && dyno.previousInstance ? dyno.previousInstance : dyno.instance,
    app_id: dyno.appId,
    app_name: appName,
    name: dyno.name,
    type: dyno.type,
    command: dyno.command,
    size: dyno.size,
    memory_mb: memoryOf(dyno.size),
    release_version: version,
    slug_id: slugId!,
    env: { ...config, ...dyno.extraEnv },
    boot_timeout_s: bootTimeoutS,
    ...(dyno.timeToLiveS ? { time_to_live_s: dyno.timeToLiveS } : {}),
    ...(dyno.attach ? { attach: dyno.attach } : {}),
  }));
}

/** Whether a host runs (or should run) any dyno of an app; hosts may fetch only those apps' slugs. */
export async function dynoOnHost(db: Database, hostId: string, appId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: dynos.id })
    .from(dynos)
    .where(and(eq(dynos.hostId, hostId), eq(dynos.appId, appId)))
    .limit(1);
  return !!row;
}
