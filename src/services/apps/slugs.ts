import { and, eq, isNotNull, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, slugs, type AppRow, type SlugRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { isUuid } from "../../db/paging.ts";
import { getConfigVars } from "./config-vars.ts";
import type { ChangeBy } from "../events/outbox.ts";
import { isProcessType } from "../../protocol/process-types.ts";
import { applyProcessTypes, refreshProcessTier } from "../dynos/formation.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { cutRelease } from "./releases.ts";
import type { ReleaseRow } from "../../db/schema/index.ts";

/** Largest slug accepted (Heroku's limit), both as uploaded and as unpacked. */
export const MAX_SLUG_BYTES = 500 * 1024 * 1024;

export const slugBlobKey = (appId: string, slugId: string) => `slugs/${appId}/${slugId}.tar.gz`;

/** Checks a Procfile-style map of process types to commands. */
export function validateProcessTypes(processTypes: Record<string, string>): Record<string, string> {
  for (const [type, command] of Object.entries(processTypes)) {
    if (!isProcessType(type)) throw invalidParams(`Invalid process type ${JSON.stringify(type)}: use letters, digits, dashes and underscores.`);
    if (typeof command !== "string" || !command.trim()) throw invalidParams(`Process type ${type} needs a command.`);
    if (command.length > 4096 || command.includes("\u0000")) throw invalidParams(`Process type ${type} has an invalid command.`);
  }
  return processTypes;
}

/** Creates a slug record; its tarball is uploaded separately to the returned blob URL. */
export async function createSlug(
  db: Database,
  app: AppRow,
  input: {
    processTypes: Record<string, string>;
    commit?: string | null;
    commitDescription?: string | null;
    stack?: string | null;
    buildpackProvidedDescription?: string | null;
  },
): Promise<SlugRow> {
  validateProcessTypes(input.processTypes);
  const id = crypto.randomUUID();
  const [row] = await db
    .insert(slugs)
    .values({
      id,
      appId: app.id,
      blobKey: slugBlobKey(app.id, id),
      processTypes: input.processTypes,
      commit: input.commit ?? null,
      commitDescription: input.commitDescription ?? null,
      stack: input.stack ?? app.stack,
      buildpackProvidedDescription: input.buildpackProvidedDescription ?? null,
    })
    .returning();
  return row!;
}

/** A slug of this app by id. */
export async function getSlug(db: Database, appId: string, id: string): Promise<SlugRow> {
  const [row] = isUuid(id)
    ? await db
        .select()
        .from(slugs)
        .where(and(eq(slugs.id, id), eq(slugs.appId, appId)))
    : [];
  if (!row) throw new ApiError("not_found", "Couldn't find that slug.", "slug");
  return row;
}

export async function getSlugById(db: Database, id: string): Promise<SlugRow | null> {
  const [row] = isUuid(id) ? await db.select().from(slugs).where(eq(slugs.id, id)) : [];
  return row ?? null;
}

/** Records that a slug's tarball is stored. */
export async function markSlugUploaded(db: Database, id: string, size: number, checksum: string): Promise<void> {
  await db.update(slugs).set({ size, checksum, updatedAt: sql`now()` }).where(eq(slugs.id, id));
}

/**
 * Makes a slug live (`POST /apps/{app}/releases` with a slug): see releaseSlugIn.
 */
export async function releaseSlug(ctx: ServiceContext, app: AppRow, slugId: string, description?: string): Promise<ReleaseRow> {
  return ctx.db.transaction((tx) => releaseSlugIn(tx, { actor: actingUser(ctx), requestId: ctx.requestId }, app, slugId, { description, cause: "slug" }));
}

/**
 * Makes a slug live inside `db`'s transaction (a build's success runs it with its own
 * bookkeeping): a new release with the app's current config, the formation follows the
 * slug's process types, and every dyno restarts on it.
 */
export async function releaseSlugIn(
  db: Database,
  by: ChangeBy & { actor: Actor },
  app: AppRow,
  slugId: string,
  o: { description?: string; cause: string },
): Promise<ReleaseRow> {
  return db.transaction(async (tx) => {
    await tx.select({ id: apps.id }).from(apps).where(eq(apps.id, app.id)).for("update");
    const slug = await getSlug(tx, app.id, slugId);
    if (slug.size === null) throw invalidParams("That slug has not been uploaded yet.");
    const config = await getConfigVars(tx, app.id);
    await tx.update(apps).set({ slugSize: slug.size }).where(eq(apps.id, app.id));
    await applyProcessTypes(tx, app.id, slug.processTypes);
    await refreshProcessTier(tx, app.id);
    return cutRelease(tx, app, by, {
      description: o.description ?? (slug.commit ? `Deploy ${slug.commit.slice(0, 8)}` : "Deploy"),
      config,
      slugId: slug.id,
      cause: o.cause,
      details: { slug_id: slug.id },
      dynos: "restart",
    });
  });
}

/** Whether an app has ever had a slug released (until then its URL shows the welcome page). */
export async function hasDeployed(db: Database, appId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: slugs.id })
    .from(slugs)
    .where(and(eq(slugs.appId, appId), isNotNull(slugs.size)))
    .limit(1);
  return !!row;
}
