import { and, desc, eq, sql } from "drizzle-orm";
import { toReleaseJson } from "../../serializers/release.ts";
import type { Database } from "../../db/client.ts";
import { finishPage, isUuid, pageClauses, type Page, type SortField } from "../../db/paging.ts";
import { apps, builds, configVars, releases, type AppRow, type ReleaseRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { ApiError } from "../../errors.ts";
import type { PageRange } from "../../lib/range.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { noChanges, syncDynos } from "../dynos/dynos.ts";
import { type ChangeBy, emit } from "../events/outbox.ts";
import { placeDynos } from "../dynos/placement.ts";

export interface NewRelease {
  description: string;
  config: Record<string, string>;
  /** Omitted: the slug of the current release, since a config change keeps the code. */
  slugId?: string | null;
  /** `pending` while a release phase decides it (see release-phase.ts); else `succeeded`. */
  status?: "pending" | "succeeded";
  /** What made it, for its `release.created` event: `build`, `config`, `rollback`, `slug`, `initial`, a release phase's `build`. */
  cause: string;
  /** More of what made it, for its audit row. */
  details?: Record<string, unknown>;
  /**
   * How the app's dynos follow it: `sync` gives the running dynos new instances on it (a
   * config change, a rollback), `restart` also places the dynos a new slug's process types
   * add; omitted, they stay (a pending release, the first one).
   */
  dynos?: "sync" | "restart";
}

/**
 * Cuts the next release of an app and moves its dynos onto it, recording `release.created`
 * (with the dynos to start and stop) in the same transaction. Must run inside the
 * transaction of the change it records; the version comes from a row-locked counter on the
 * app, so concurrent changes get distinct, gapless versions.
 */
export async function cutRelease(
  tx: Database,
  app: AppRow,
  by: ChangeBy & { actor: Pick<Actor, "accountId" | "email"> },
  input: NewRelease,
): Promise<ReleaseRow> {
  const { actor } = by;
  const slugId = input.slugId !== undefined ? input.slugId : await currentSlugId(tx, app.id);
  const [seq] = await tx
    .update(apps)
    .set({ releaseSeq: sql`${apps.releaseSeq} + 1`, releasedAt: sql`now()`, updatedAt: sql`now()` })
    .where(eq(apps.id, app.id))
    .returning({ version: apps.releaseSeq });
  const [row] = await tx
    .insert(releases)
    .values({
      appId: app.id,
      version: seq!.version,
      description: input.description,
      status: input.status ?? "succeeded",
      accountId: actor.accountId,
      userEmail: actor.email,
      slugId,
      config: input.config,
    })
    .returning();
  const changes = input.dynos ? await syncDynos(tx, app, { restart: input.dynos === "restart" }) : noChanges();
  if (input.dynos === "restart") await placeDynos(tx);
  await emit(tx, by, {
    type: "release.created",
    app,
    data: {
      version: row!.version,
      description: row!.description,
      status: row!.status as "pending" | "succeeded",
      cause: input.cause,
      ...(input.details && { details: input.details }),
    },
    webhooks: [{ include: "api:release", action: "create", data: toReleaseJson(row!, app, row!.status === "succeeded" ? row!.version : null) }],
    dynos: changes,
  });
  return row!;
}

async function currentSlugId(db: Database, appId: string): Promise<string | null> {
  const [row] = await db
    .select({ slugId: releases.slugId })
    .from(releases)
    .where(and(eq(releases.appId, appId), eq(releases.status, "succeeded")))
    .orderBy(desc(releases.version))
    .limit(1);
  return row?.slugId ?? null;
}

/** Marks a failed build's release as failed, when its release phase had left it pending. */
export async function failPendingReleaseOf(db: Database, buildId: string): Promise<void> {
  await db
    .update(releases)
    .set({ status: "failed", updatedAt: sql`now()` })
    .where(and(eq(releases.status, "pending"), sql`${releases.id} = (select ${builds.releaseId} from ${builds} where ${builds.id} = ${buildId})`));
}

/** The version of the release the app runs now: its newest successful one. */
export async function currentVersion(db: Database, appId: string): Promise<number | null> {
  const [row] = await db
    .select({ v: sql<number | null>`max(${releases.version})` })
    .from(releases)
    .where(and(eq(releases.appId, appId), eq(releases.status, "succeeded")));
  return row?.v ?? null;
}

const sortFields: Record<string, SortField<ReleaseRow>> = {
  version: { column: releases.version, valid: (v) => /^\d{1,9}$/.test(v), parse: Number, valueOf: (r) => String(r.version) },
  id: { column: releases.id, valid: isUuid, valueOf: (r) => r.id },
};
export const RELEASE_SORT_FIELDS = Object.keys(sortFields);

export async function listReleases(db: Database, app: AppRow, range: PageRange): Promise<Page<ReleaseRow>> {
  const page = pageClauses(range, sortFields);
  const rows = await db
    .select()
    .from(releases)
    .where(and(eq(releases.appId, app.id), page.where))
    .orderBy(page.orderBy)
    .limit(page.limit);
  return finishPage(rows, range, sortFields);
}

/** A release by version (`7` or `v7`) or id. */
export async function getRelease(db: Database, app: AppRow, versionOrId: string): Promise<ReleaseRow> {
  const version = /^v?(\d{1,9})$/.exec(versionOrId);
  const which = version ? eq(releases.version, Number(version[1])) : isUuid(versionOrId) ? eq(releases.id, versionOrId) : null;
  const [row] = which
    ? await db
        .select()
        .from(releases)
        .where(and(eq(releases.appId, app.id), which))
        .limit(1)
    : [];
  if (!row) throw new ApiError("not_found", "Couldn't find that release.", "release");
  return row;
}

/**
 * A new release with an older one's slug and config; the app's config vars follow it and
 * its dynos restart on it.
 */
export async function rollback(ctx: ServiceContext, app: AppRow, target: string): Promise<ReleaseRow> {
  const actor = actingUser(ctx);
  return ctx.db.transaction(async (tx) => {
    const old = await getRelease(tx, app, target);
    if (old.status !== "succeeded") throw new ApiError("invalid_params", `Release v${old.version} is ${old.status} and cannot be rolled back to.`);
    // A release from before the first deploy has no code to run: the API would name a
    // release that no dyno can run.
    if (!old.slugId) throw new ApiError("invalid_params", `Release v${old.version} has no slug (nothing had been deployed yet) and cannot be rolled back to.`);
    await tx.delete(configVars).where(eq(configVars.appId, app.id));
    const entries = Object.entries(old.config);
    if (entries.length) await tx.insert(configVars).values(entries.map(([key, value]) => ({ appId: app.id, key, value })));
    return cutRelease(
      tx,
      app,
      { actor, requestId: ctx.requestId },
      { description: `Rollback to v${old.version}`, config: old.config, slugId: old.slugId, cause: "rollback", details: { to: old.version }, dynos: "sync" },
    );
  });
}
