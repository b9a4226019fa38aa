import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, builds, slugs, type AppRow, type BuildRow, type ReleaseRow, type SlugRow } from "../../db/schema/index.ts";
import type { BuildOutcome } from "./records.ts";
import type { Actor, Bindings } from "../../env.ts";
import { ApiError } from "../../errors.ts";
import { putCheckedSlug } from "../apps/slug-archive.ts";
import { publicUrls, webUrl } from "../../lib/urls.ts";
import type { BuildResult } from "../../protocol/build.ts";
import { buildSucceeded, endBuild, saveBuildOutput, setBuildRelease, setBuildSlug } from "./records.ts";
import { buildChannel, buildTimeoutS, failBuild } from "./builds.ts";
import { BUILT_IN_BUILDPACKS } from "./buildpacks.ts";
import { announceReleasePhase, launchLines, startReleasePhase } from "./release-phase.ts";
import { acceptPack } from "./git-packs.ts";
import { dispatchEvents } from "../events/outbox.ts";
import { createSlug, markSlugUploaded, releaseSlugIn, validateProcessTypes } from "../apps/slugs.ts";

async function appOf(db: Database, build: BuildRow): Promise<AppRow> {
  const [app] = await db.select().from(apps).where(eq(apps.id, build.appId));
  if (!app) throw new ApiError("not_found", "Couldn't find that build.", "build");
  return app;
}

/**
 * Stores the slug a build made: a slug row for the app (with the build's commit) and
 * its tar.gz streamed into R2, hashed on the way. One slug per build.
 */
export async function storeBuildSlug(
  db: Database,
  bucket: R2Bucket,
  build: BuildRow,
  input: { processTypes: Record<string, string>; length: number; body: ReadableStream<Uint8Array> },
): Promise<SlugRow> {
  if (build.status !== "pending") throw new ApiError("conflict", "This build has already ended.");
  if (build.slugId) throw new ApiError("conflict", "This build has already uploaded its slug.");
  const slug = await createSlug(db, await appOf(db, build), { processTypes: input.processTypes, commit: build.commit, stack: build.stack });
  // The same check as the Slug API's: the agent checked it too, but the control plane trusts no host's bytes.
  const checksum = await putCheckedSlug(bucket, slug.blobKey, input.body, input.length);
  await markSlugUploaded(db, slug.id, input.length, checksum);
  await setBuildSlug(db, build.id, slug.id);
  return slug;
}

/**
 * Applies a host's report on a build. Success releases the slug (dynos restart on it),
 * accepts the pushed pack and moves the deployed ref, all in one transaction; failure,
 * or a success that cannot be released, changes nothing and the old release keeps
 * serving. A slug whose process types declare `release` goes through its release phase
 * first (see release-phase.ts): the build stays pending until that has decided. A
 * repeated report finds the build ended (or its release phase started) and changes nothing.
 */
export async function completeBuild(db: Database, env: Bindings, build: BuildRow, result: BuildResult): Promise<BuildOutcome | PhaseStarted> {
  if (build.status !== "pending") return { status: build.status, error: build.error };
  if (result.status === "failed") return failBuild(db, env, build, result.error ?? "The build failed.");
  if (!build.slugId || (result.slug_id && result.slug_id !== build.slugId)) {
    return failBuild(db, env, build, "The build reported success without uploading its slug.");
  }
  const slugId = build.slugId;
  await rememberDetectedBuildpack(db, build, result);
  const app = await appOf(db, build);
  const actor: Actor = { accountId: build.createdBy ?? app.ownerId, email: build.userEmail, authorizationId: "", isDefaultKey: false };
  const releaseCommand = result.process_types.release;
  if (releaseCommand) return startPhase(db, env, app, actor, build, slugId, result, releaseCommand);
  let released: ReleaseRow | null;
  try {
    released = await db.transaction(async (tx) => {
      // The build row's lock makes a repeated report wait here and then find it ended.
      const ended = await endBuild(tx, build.id, { status: "succeeded" });
      if (!ended) return null;
      if (Object.keys(result.process_types).length) {
        await tx
          .update(slugs)
          .set({
            processTypes: validateProcessTypes(result.process_types),
            buildpackProvidedDescription: result.buildpack_provided_description,
            updatedAt: sql`now()`,
          })
          .where(eq(slugs.id, slugId));
      }
      const release = await releaseSlugIn(tx, { actor }, app, slugId, { cause: "build" });
      await setBuildRelease(tx, build.id, release.id);
      if (build.packId) await acceptPack(tx, app.id, build.packId);
      await buildSucceeded(tx, ended, app, release);
      return release;
    });
  } catch (err) {
    if (err instanceof ApiError) return failBuild(db, env, build, `The slug could not be released: ${err.message}`);
    throw err;
  }
  if (!released) return { status: "succeeded", error: null };
  const channel = buildChannel(env, build.id);
  await channel.append(["-----> Launching...", ...launchLines(build, released.version, webUrl(publicUrls(env), app.name))], true);
  // The hosts are told, the app's log and webhooks hear of it, before the push's output ends.
  await dispatchEvents(db, env, { appId: app.id });
  const { lines } = await channel.finish({ status: "succeeded", error: null });
  await saveBuildOutput(db, build.id, lines);
  return { status: "succeeded", error: null };
}

/**
 * As on Heroku, an app whose buildpack was detected keeps it: `heroku buildpacks` then
 * names it, and later builds use it without detecting again. Only a built-in buildpack,
 * only for a build given none, and only while the app still has none (its owner may have
 * set one meanwhile).
 */
async function rememberDetectedBuildpack(db: Database, build: BuildRow, result: BuildResult): Promise<void> {
  const detected = result.detected_buildpack;
  if (!detected || build.buildpacks.length || !BUILT_IN_BUILDPACKS.includes(detected)) return;
  await db
    .update(apps)
    .set({ buildpacks: [{ url: detected, name: detected }], updatedAt: sql`now()` })
    .where(and(eq(apps.id, build.appId), sql`${apps.buildpacks} = '[]'::jsonb`));
}

/** A build waiting for its release phase. */
type PhaseStarted = { status: "pending"; error: null };

/** A successful build whose slug declares `release`: its release phase starts, the build waits for it. */
async function startPhase(
  db: Database,
  env: Bindings,
  app: AppRow,
  actor: Actor,
  build: BuildRow,
  slugId: string,
  result: BuildResult,
  command: string,
): Promise<BuildOutcome | PhaseStarted> {
  let started: Awaited<ReturnType<typeof startReleasePhase>> | null;
  try {
    started = await db.transaction(async (tx) => {
      // Locked and still pending without a release: a repeated report finds the phase started.
      const [row] = await tx.select({ releaseId: builds.releaseId, status: builds.status }).from(builds).where(eq(builds.id, build.id)).for("update");
      if (row?.status !== "pending" || row.releaseId) return null;
      const [slug] = await tx
        .update(slugs)
        .set({
          processTypes: validateProcessTypes(result.process_types),
          buildpackProvidedDescription: result.buildpack_provided_description,
          updatedAt: sql`now()`,
        })
        .where(eq(slugs.id, slugId))
        .returning();
      return startReleasePhase(tx, app, actor, build, { id: slugId, commit: slug?.commit ?? build.commit, command }, buildTimeoutS(env));
    });
  } catch (err) {
    if (err instanceof ApiError) return failBuild(db, env, build, `The release command could not start: ${err.message}`);
    throw err;
  }
  if (!started) return { status: "pending", error: null };
  await announceReleasePhase(env, build, command, started.dynoName);
  await dispatchEvents(db, env, { appId: app.id });
  return { status: "pending", error: null };
}
