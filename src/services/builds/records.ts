import { and, eq, sql } from "drizzle-orm";
import { emit } from "../events/outbox.ts";
import type { Database } from "../../db/client.ts";
import { finishPage, isUuid, pageClauses, type Page, type SortField } from "../../db/paging.ts";
import { apps, builds, type AppRow, type BuildRow, type BuildSourceKind, type BuildpackRef, type ReleaseRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { ApiError } from "../../errors.ts";
import type { PageRange } from "../../lib/range.ts";

/** How a build ended. */
export interface BuildOutcome {
  status: "succeeded" | "failed";
  error: string | null;
}

/** What a new build is made of. */
export interface NewBuild {
  kind: BuildSourceKind;
  commit: string | null;
  sourceBlobKey: string;
  sourceUrl: string;
  sourceVersion?: string | null;
  sourceChecksum?: string | null;
  packId?: string | null;
  sourceId?: string | null;
  buildpacks: BuildpackRef[];
}

/** Inserts a pending build for an app, started by `actor`, with its `build.started` event. */
export async function insertBuild(db: Database, app: AppRow, actor: Pick<Actor, "accountId" | "email">, input: NewBuild): Promise<BuildRow> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(builds)
      .values({
        appId: app.id,
        sourceKind: input.kind,
        commit: input.commit,
        sourceBlobKey: input.sourceBlobKey,
        sourceUrl: input.sourceUrl,
        sourceVersion: input.sourceVersion ?? null,
        sourceChecksum: input.sourceChecksum ?? null,
        packId: input.packId ?? null,
        sourceId: input.sourceId ?? null,
        buildpacks: input.buildpacks,
        stack: app.buildStack,
        createdBy: actor.accountId,
        userEmail: actor.email,
      })
      .returning();
    await emit(
      tx,
      { actor },
      { type: "build.started", app, data: { build_id: row!.id }, webhooks: [{ include: "api:build", action: "create", data: buildEventData(row!, app) }] },
    );
    return row!;
  });
}

/** Who started a build, as its events name them. */
const starter = (b: BuildRow) => ({ accountId: b.createdBy ?? "", email: b.userEmail });

/** A build as its webhook events carry it (the Platform API's fields that do not need a request). */
export function buildEventData(b: BuildRow, app: { id: string; name: string }) {
  return {
    id: b.id,
    app: { id: app.id, name: app.name },
    status: b.status,
    source_blob: { version: b.commit ?? b.sourceVersion },
    slug: b.slugId ? { id: b.slugId } : null,
    release: b.releaseId ? { id: b.releaseId } : null,
    stack: b.stack,
    user: { id: b.createdBy, email: b.userEmail },
    created_at: b.createdAt.toISOString(),
    updated_at: b.updatedAt.toISOString(),
  };
}

/** A build of this app by id, or 404. */
export async function getBuild(db: Database, appId: string, id: string): Promise<BuildRow> {
  const [row] = isUuid(id)
    ? await db
        .select()
        .from(builds)
        .where(and(eq(builds.id, id), eq(builds.appId, appId)))
    : [];
  if (!row) throw new ApiError("not_found", "Couldn't find that build.", "build");
  return row;
}

/** A build by id alone, for paths that carry their own authority (host secrets, signed URLs). */
export async function getBuildById(db: Database, id: string): Promise<BuildRow | null> {
  const [row] = isUuid(id) ? await db.select().from(builds).where(eq(builds.id, id)) : [];
  return row ?? null;
}

const isIsoTime = (v: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(v) && !Number.isNaN(Date.parse(v));
const sortFields: Record<string, SortField<BuildRow>> = {
  started_at: { column: builds.createdAt, valid: isIsoTime, parse: (v) => new Date(v), valueOf: (r) => r.createdAt.toISOString() },
  id: { column: builds.id, valid: isUuid, valueOf: (r) => r.id },
};
/** Builds list oldest first by default, as they were started. */
export const BUILD_SORT_FIELDS = Object.keys(sortFields);

/** One page of an app's builds. */
export async function listBuilds(db: Database, app: AppRow, range: PageRange): Promise<Page<BuildRow>> {
  const page = pageClauses(range, sortFields);
  const rows = await db
    .select()
    .from(builds)
    .where(and(eq(builds.appId, app.id), page.where))
    .orderBy(page.orderBy)
    .limit(page.limit);
  return finishPage(rows, range, sortFields);
}

/** Records which host runs a build. */
export async function assignBuildHost(db: Database, buildId: string, hostId: string): Promise<void> {
  await db.update(builds).set({ hostId, updatedAt: sql`now()` }).where(eq(builds.id, buildId));
}

/** Records the slug a build uploaded. */
export async function setBuildSlug(db: Database, buildId: string, slugId: string): Promise<void> {
  await db.update(builds).set({ slugId, updatedAt: sql`now()` }).where(eq(builds.id, buildId));
}

/** Records the release a successful build made. */
export async function setBuildRelease(db: Database, buildId: string, releaseId: string): Promise<void> {
  await db.update(builds).set({ releaseId, updatedAt: sql`now()` }).where(eq(builds.id, buildId));
}

/**
 * Ends a pending build; null when it had already ended (a late or repeated report). Runs
 * inside the transaction that applies a success, which then says so (buildSucceeded).
 */
export async function endBuild(db: Database, buildId: string, end: { status: "succeeded" | "failed"; error?: string | null }): Promise<BuildRow | null> {
  const [ended] = await db
    .update(builds)
    .set({ status: end.status, error: end.error ?? null, finishedAt: sql`now()`, updatedAt: sql`now()` })
    .where(and(eq(builds.id, buildId), eq(builds.status, "pending")))
    .returning();
  return ended ?? null;
}

/** Records a build's success with the release it made, in the transaction that ended it and cut the release. */
export async function buildSucceeded(tx: Database, build: BuildRow, app: AppRow, release: ReleaseRow): Promise<void> {
  const data = buildEventData({ ...build, status: "succeeded", releaseId: release.id, updatedAt: new Date() }, app);
  await emit(
    tx,
    { actor: starter(build) },
    {
      type: "build.succeeded",
      app,
      data: { build_id: build.id, version: release.version, description: release.description },
      webhooks: [{ include: "api:build", action: "update", data }],
    },
  );
}

/** Fails a build that is still pending and says how it ended either way. */
export async function failPendingBuild(db: Database, buildId: string, error: string): Promise<{ status: "succeeded" | "failed"; error: string | null }> {
  await db.transaction(async (tx) => {
    const ended = await endBuild(tx, buildId, { status: "failed", error });
    if (!ended) return;
    const [app] = await tx.select({ id: apps.id, name: apps.name }).from(apps).where(eq(apps.id, ended.appId)).limit(1);
    if (!app) return;
    await emit(
      tx,
      { actor: starter(ended) },
      {
        type: "build.failed",
        app,
        data: { build_id: ended.id, error },
        webhooks: [{ include: "api:build", action: "update", data: buildEventData(ended, app) }],
      },
    );
  });
  const row = await getBuildById(db, buildId);
  return { status: row?.status === "succeeded" ? "succeeded" : "failed", error: row?.error ?? error };
}

/** Keeps a finished build's output lines (already capped by its channel). */
export async function saveBuildOutput(db: Database, buildId: string, lines: string[]): Promise<void> {
  await db.update(builds).set({ output: lines }).where(eq(builds.id, buildId));
}
