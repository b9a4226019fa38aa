import { inArray } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { hosts, type AppRow, type BuildRow } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import type { BuildSpec } from "../../protocol/build.ts";
import { assignBuildHost, type BuildOutcome, failPendingBuild, getBuildById, insertBuild, type NewBuild, saveBuildOutput } from "./records.ts";
import { normalizeBuildpacks } from "./buildpacks.ts";
import { getConfigVars } from "../apps/config-vars.ts";
import { discardPacks } from "./git-packs.ts";
import { sendCommand } from "../dynos/host-commands.ts";
import { dispatchEvents } from "../events/outbox.ts";
import { freeMemory } from "../dynos/placement.ts";
import { failPendingReleaseOf } from "../apps/releases.ts";
import { MAX_SLUG_BYTES } from "../apps/slugs.ts";
import { sourceForBuild } from "./sources.ts";

/** Heroku's build time limit, unless BUILD_TIMEOUT_S says otherwise. */
export const DEFAULT_BUILD_TIMEOUT_S = 15 * 60;

/** The build time limit in seconds, from the Worker's configuration. */
export const buildTimeoutS = (env: Pick<Bindings, "BUILD_TIMEOUT_S">) =>
  Number(env.BUILD_TIMEOUT_S) > 0 ? Number(env.BUILD_TIMEOUT_S) : DEFAULT_BUILD_TIMEOUT_S;

/** The BuildChannel object of one build. */
export function buildChannel(env: Pick<Bindings, "BUILD_CHANNEL">, buildId: string) {
  return env.BUILD_CHANNEL.get(env.BUILD_CHANNEL.idFromName(buildId));
}

/** `heroku-24` as Heroku writes it in build output: `Heroku-24`. */
const stackTitle = (stack: string) => stack.replace(/^heroku/, "Heroku");

/** The host with the most free memory among those up and reachable, or null (builds and Postgres transfers run there). */
export async function chooseBuildHost(db: Database): Promise<{ id: string; url: string } | null> {
  const free = await freeMemory(db);
  if (!free.size) return null;
  const reachable = await db
    .select({ id: hosts.id, url: hosts.url })
    .from(hosts)
    .where(inArray(hosts.id, [...free.keys()]));
  const ranked = reachable.filter((h): h is { id: string; url: string } => !!h.url).sort((a, b) => free.get(b.id)! - free.get(a.id)!);
  return ranked[0] ?? null;
}

/** What failing a build writes its output to: the build's BuildChannel (its stub, or itself). */
export interface BuildOutputChannel {
  tail(n: number): Promise<string[]>;
  append(lines: string[], platform?: boolean): Promise<void>;
  finish(outcome: BuildOutcome): Promise<{ outcome: BuildOutcome; lines: string[] }>;
}

/**
 * Ends a build as failed (if it still runs), whoever notices: its host's report, a host
 * that cannot take it, or the build channel's time limit. Nothing is released and its pack
 * is dropped; its output gets the reason (unless the host just wrote it), a push ends with
 * Heroku's `Push failed`, and the output is kept. Its `build.failed` event (the app's log
 * says `Build failed`, its webhooks hear of it) is carried out before the output ends, so
 * a push returns after them.
 */
export async function failBuild(
  db: Database,
  env: Bindings,
  build: BuildRow,
  error: string,
  channel: BuildOutputChannel = buildChannel(env, build.id),
): Promise<BuildOutcome> {
  const outcome = await failPendingBuild(db, build.id, error);
  if (outcome.status === "failed") {
    // A release its release phase had left pending is not to be: the previous one keeps serving.
    await failPendingReleaseOf(db, build.id);
    const said = (await channel.tail(10)).includes(` !     ${error}`);
    await channel.append([...(said ? [] : ["", ` !     ${error}`]), ...(build.sourceKind === "git" ? ["", " !     Push failed"] : [])], true);
    await dispatchEvents(db, env, { appId: build.appId });
  }
  const { lines } = await channel.finish(outcome);
  await saveBuildOutput(db, build.id, lines);
  if (outcome.status === "failed" && build.packId) await discardPacks(db, env.BLOBS, [build.packId]);
  return outcome;
}

/**
 * Starts a build: the record, its output channel with Heroku's first line, and the
 * signed `build` command to the host with the most free memory. A build no host takes
 * fails at once.
 */
export async function startBuild(db: Database, env: Bindings, app: AppRow, actor: Pick<Actor, "accountId" | "email">, input: NewBuild): Promise<BuildRow> {
  const build = await insertBuild(db, app, actor, input);
  const channel = buildChannel(env, build.id);
  await channel.open(build.id, buildTimeoutS(env));
  await channel.append([`-----> Building on the ${stackTitle(app.buildStack)} stack`], true);

  const host = await chooseBuildHost(db);
  if (!host) {
    await failBuild(db, env, build, "No build host is available right now; try again shortly.");
    return (await getBuildById(db, build.id))!;
  }
  await assignBuildHost(db, build.id, host.id);
  const spec: BuildSpec = {
    id: build.id,
    app_id: app.id,
    app_name: app.name,
    kind: build.sourceKind,
    commit: build.commit,
    buildpacks: build.buildpacks.map((b) => ({ url: b.url, ...(b.name ? { name: b.name } : {}) })),
    env: await getConfigVars(db, app.id),
    timeout_s: buildTimeoutS(env),
    max_slug_bytes: MAX_SLUG_BYTES,
  };
  if (!(await sendCommand(env.COMMAND_SIGNING_KEY, host.id, host.url, { op: "build", build: spec }))) {
    await failBuild(db, env, build, "The build host could not be reached; try again shortly.");
  }
  return (await getBuildById(db, build.id))!;
}

/** What `POST /apps/{app}/builds` asks for. */
export interface SourceBuildInput {
  source_blob: { url: string; version?: string | null; checksum?: string | null };
  buildpacks?: Array<{ url?: string; name?: string }> | null;
}

/**
 * Builds an uploaded source tarball (Heroku's Build API). The source must be one of the
 * caller's own uploads; the buildpacks default to the app's installations.
 */
export async function buildFromSource(db: Database, env: Bindings, app: AppRow, actor: Actor, input: SourceBuildInput): Promise<BuildRow> {
  const source = await sourceForBuild(db, actor, env.API_HOST, input.source_blob.url, input.source_blob.checksum);
  const buildpacks = input.buildpacks?.length ? normalizeBuildpacks(input.buildpacks.map((b) => b.url ?? b.name ?? "")) : app.buildpacks;
  return startBuild(db, env, app, actor, {
    kind: "tarball",
    commit: null,
    sourceBlobKey: source.blobKey,
    // The URL's signature is a download credential; it is not kept.
    sourceUrl: input.source_blob.url.split("?")[0]!,
    sourceVersion: input.source_blob.version ?? null,
    sourceChecksum: source.checksum,
    sourceId: source.id,
    buildpacks,
  });
}
