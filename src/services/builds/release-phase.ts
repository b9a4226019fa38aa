import { and, desc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, builds, dynos, releases, slugs, type AppRow, type BuildRow, type ReleaseRow } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { ApiError } from "../../errors.ts";
import { publicUrls, webUrl } from "../../lib/urls.ts";
import type { LogLine, ObservedDyno } from "../../protocol/host.ts";
import { getConfigVars } from "../apps/config-vars.ts";
import { buildSucceeded, endBuild, getBuildById, saveBuildOutput } from "./records.ts";
import { buildChannel, failBuild } from "./builds.ts";
import { noChanges, syncDynos } from "../dynos/dynos.ts";
import { dispatchEvents, emit } from "../events/outbox.ts";
import { applyProcessTypes, refreshProcessTier } from "../dynos/formation.ts";
import { acceptPack } from "./git-packs.ts";
import type { VanishedOneOff } from "../fleet/hosts.ts";
import { oneOffSlot } from "../dynos/one-off.ts";
import { placeDynos } from "../dynos/placement.ts";
import { cutRelease } from "../apps/releases.ts";
import { toReleaseJson } from "../../serializers/release.ts";

/**
 * The release phase, as Heroku runs it: a build whose process types declare `release`
 * cuts its release as `pending` and runs that command once in a `release.N` one-off dyno,
 * from the new slug with the new release's config, placed like any dyno. Its output goes
 * to the app's log and to the build's stream (so `git push` shows it). Exit status 0 makes
 * the release current (dynos restart on it, the pushed ref moves); anything else marks it
 * `failed`, fails the build, and leaves the previous release serving.
 */

/** What a push shows when the release phase starts, in Heroku's words. */
function startLines(command: string, dyno: string): string[] {
  return [
    "-----> Launching...",
    " !     Release command declared: this new release will not be available until the command succeeds.",
    `       Running release command on ${dyno}: ${command}`,
    "",
  ];
}

/** What a push shows once the release is live. */
export function launchLines(build: BuildRow, version: number, url: string): string[] {
  const lines = [`       Released v${version}`, `       ${url} deployed to dynoplane`, ""];
  return build.sourceKind === "git" ? [...lines, "Verifying deploy... done."] : lines;
}

/**
 * Starts a build's release phase inside the transaction that records the build's success:
 * the pending release, and its `release.N` dyno placed on a host. Refused (the caller fails
 * the build) when no host has room for it now.
 */
export async function startReleasePhase(
  tx: Database,
  app: AppRow,
  actor: Pick<Actor, "accountId" | "email">,
  build: BuildRow,
  slug: { id: string; commit: string | null; command: string },
  timeToLiveS: number,
): Promise<{ release: ReleaseRow; dynoName: string }> {
  const release = await cutRelease(
    tx,
    app,
    { actor },
    {
      description: slug.commit ? `Deploy ${slug.commit.slice(0, 8)}` : "Deploy",
      config: await getConfigVars(tx, app.id),
      slugId: slug.id,
      status: "pending",
      cause: "build",
    },
  );
  await tx.update(builds).set({ releaseId: release.id, updatedAt: sql`now()` }).where(eq(builds.id, build.id));
  const { name, webSize } = await oneOffSlot(tx, app.id, "release");
  const [row] = await tx
    .insert(dynos)
    .values({ appId: app.id, releaseId: release.id, name, type: "release", command: slug.command, size: webSize, timeToLiveS })
    .returning();
  await placeDynos(tx);
  const [placed] = await tx.select({ hostId: dynos.hostId }).from(dynos).where(eq(dynos.id, row!.id));
  if (!placed?.hostId) throw new ApiError("unavailable", "no host has room for the release command right now; push again shortly");
  const changes = noChanges();
  changes.start.push(row!.id);
  await emit(tx, { actor }, { type: "release.phase_started", app, data: { version: release.version, name, command: slug.command }, dynos: changes });
  return { release, dynoName: name };
}

/** Tells the build's stream (and so the push) that the release phase has started. */
export async function announceReleasePhase(env: Bindings, build: BuildRow, command: string, dynoName: string): Promise<void> {
  await buildChannel(env, build.id).append(startLines(command, dynoName), true);
}

/**
 * Copies the output of release dynos into their builds' streams, so a push shows it as it
 * comes. Lines of other dynos are left alone (they are in the app's log already).
 */
export async function forwardReleaseOutput(db: Database, env: Bindings, lines: LogLine[]): Promise<void> {
  const ours = lines.filter((l) => l.source === "app" && l.dyno.startsWith("release."));
  if (!ours.length) return;
  const targets = await db
    .select({ appId: dynos.appId, name: dynos.name, buildId: builds.id })
    .from(dynos)
    .innerJoin(builds, eq(builds.releaseId, dynos.releaseId))
    .where(and(eq(dynos.type, "release"), inArray(dynos.appId, [...new Set(ours.map((l) => l.app_id))]), eq(builds.status, "pending")));
  const byBuild = new Map<string, string[]>();
  for (const line of ours) {
    const target = targets.find((t) => t.appId === line.app_id && t.name === line.dyno);
    if (target) byBuild.set(target.buildId, [...(byBuild.get(target.buildId) ?? []), line.text]);
  }
  await Promise.all([...byBuild].map(([buildId, texts]) => buildChannel(env, buildId).append(texts)));
}

/**
 * Ends the release phases whose dynos a host reported ended (call it before those rows are
 * forgotten). A repeated report finds the release no longer pending and changes nothing.
 */
export async function finishReleasePhases(db: Database, env: Bindings, hostId: string, observed: ObservedDyno[]): Promise<void> {
  const ended = observed.filter((o) => o.state === "down" || o.state === "crashed");
  if (!ended.length) return;
  const rows = await db
    .select({ dyno: dynos, buildId: builds.id })
    .from(dynos)
    .innerJoin(builds, eq(builds.releaseId, dynos.releaseId))
    .where(
      and(
        eq(dynos.hostId, hostId),
        eq(dynos.type, "release"),
        inArray(
          dynos.id,
          ended.map((o) => o.id),
        ),
      ),
    );
  for (const { dyno, buildId } of rows) {
    const report = ended.find((o) => o.id === dyno.id && o.instance === dyno.instance);
    if (!report) continue;
    const build = await getBuildById(db, buildId);
    if (build?.status !== "pending") continue;
    if (report.exit_code === 0) await succeed(db, env, build, dyno.releaseId);
    else await fail(db, env, build, report.exit_code);
  }
}

/**
 * One-off dynos that vanished without their host reporting an end (its agent restarted, or
 * their start never arrived): the app's log says so, and a release phase among them fails
 * its build, so the previous release keeps serving instead of waiting out the build's limit.
 */
export async function endVanishedOneOffs(db: Database, env: Bindings, vanished: VanishedOneOff[], restarted: boolean): Promise<void> {
  const why = restarted ? "its host agent restarted" : "its host never reported it";
  for (const d of vanished) {
    await emit(db, { actor: null }, { type: "dyno.vanished", app: { id: d.appId, name: d.appName }, data: { name: d.name, why } });
    if (d.type !== "release") continue;
    const [build] = await db
      .select()
      .from(builds)
      .where(and(eq(builds.releaseId, d.releaseId), eq(builds.status, "pending")));
    if (build) await failBuild(db, env, build, `Release command failed: ${why}`);
  }
}

/** The release phase passed: the release becomes current, as a release without one would at once. */
async function succeed(db: Database, env: Bindings, build: BuildRow, releaseId: string): Promise<void> {
  const [app] = await db.select().from(apps).where(eq(apps.id, build.appId));
  if (!app) return;
  const actor: Actor = { accountId: build.createdBy ?? app.ownerId, email: build.userEmail, authorizationId: "", isDefaultKey: false };
  const done = await db.transaction(async (tx) => {
    await tx.select({ id: apps.id }).from(apps).where(eq(apps.id, app.id)).for("update");
    const [pending] = await tx
      .update(releases)
      .set({ status: "succeeded", updatedAt: sql`now()` })
      .where(and(eq(releases.id, releaseId), eq(releases.status, "pending")))
      .returning();
    const ended = pending && (await endBuild(tx, build.id, { status: "succeeded" }));
    if (!pending || !ended) return null;
    // A config change while the phase ran made a newer release of the old code: the new
    // code gets a release after it, with the config as it is now.
    const [newer] = await tx
      .select({ id: releases.id })
      .from(releases)
      .where(and(eq(releases.appId, app.id), eq(releases.status, "succeeded"), gt(releases.version, pending.version)))
      .orderBy(desc(releases.version))
      .limit(1);
    const [slug] = await tx.select().from(slugs).where(eq(slugs.id, pending.slugId!));
    if (slug) {
      await tx.update(apps).set({ slugSize: slug.size }).where(eq(apps.id, app.id));
      await applyProcessTypes(tx, app.id, slug.processTypes);
    }
    await refreshProcessTier(tx, app.id);
    const release = newer
      ? await cutRelease(
          tx,
          app,
          { actor },
          { description: pending.description, config: await getConfigVars(tx, app.id), slugId: pending.slugId, cause: "build", dynos: "restart" },
        )
      : pending;
    if (!newer) {
      // The pending release decided: its webhooks hear it is out, and the dynos move onto it.
      const changes = await syncDynos(tx, app, { restart: true });
      await placeDynos(tx);
      await emit(
        tx,
        { actor },
        {
          type: "release.decided",
          app,
          data: { version: release.version, status: "succeeded" },
          webhooks: [{ include: "api:release", action: "update", data: toReleaseJson(release, app, release.version) }],
          dynos: changes,
        },
      );
    }
    if (build.packId) await acceptPack(tx, app.id, build.packId);
    await buildSucceeded(tx, ended, app, release);
    return { release };
  });
  if (!done) return;
  const channel = buildChannel(env, build.id);
  await channel.append(["", "       Release command succeeded", ...launchLines(build, done.release.version, webUrl(publicUrls(env), app.name))], true);
  await dispatchEvents(db, env, { appId: app.id });
  const { lines } = await channel.finish({ status: "succeeded", error: null });
  await saveBuildOutput(db, build.id, lines);
}

/** The release phase failed: the build fails (which marks its release failed), nothing else changes. */
async function fail(db: Database, env: Bindings, build: BuildRow, status: number | null): Promise<void> {
  await failBuild(db, env, build, status === null ? "Release command failed" : `Release command failed (exit status ${status})`);
}
