import { eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { sources, type SourceRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { invalidParams } from "../../errors.ts";

/** Largest push or source tarball accepted unless SOURCE_MAX_MB says otherwise. */
export const DEFAULT_SOURCE_MAX_MB = 200;

/** The push and source size limit in bytes, from the Worker's configuration. */
export const maxSourceBytes = (env: { SOURCE_MAX_MB?: string }) =>
  (Number(env.SOURCE_MAX_MB) > 0 ? Number(env.SOURCE_MAX_MB) : DEFAULT_SOURCE_MAX_MB) * 1024 * 1024;

/** Where a source tarball is kept in R2. */
export const sourceBlobKey = (id: string) => `sources/${id}.tar.gz`;
/** The path of a source's signed blob URL (upload and download share it). */
export const sourceBlobPath = (id: string) => `/blobs/sources/${id}`;

/** Creates a source owned by the caller; its tarball is uploaded to a signed URL. */
export async function createSource(db: Database, actor: Actor): Promise<SourceRow> {
  const id = crypto.randomUUID();
  const [row] = await db
    .insert(sources)
    .values({ id, accountId: actor.accountId, blobKey: sourceBlobKey(id) })
    .returning();
  return row!;
}

/** A source by id alone, for its signed URLs (the signature is the credential). */
export async function getSourceById(db: Database, id: string): Promise<SourceRow | null> {
  const [row] = isUuid(id) ? await db.select().from(sources).where(eq(sources.id, id)) : [];
  return row ?? null;
}

/** Records that a source's tarball is stored. */
export async function markSourceUploaded(db: Database, id: string, size: number, checksum: string): Promise<void> {
  await db.update(sources).set({ size, checksum, updatedAt: sql`now()` }).where(eq(sources.id, id));
}

/**
 * The source a build's `source_blob.url` names. Builds fetch nothing from the outside:
 * the URL must be one of this platform's source URLs, for a source of the caller's that
 * has been uploaded. Its checksum, when given, must match what was stored.
 */
export async function sourceForBuild(db: Database, actor: Actor, apiHost: string, rawUrl: string, checksum?: string | null): Promise<SourceRow> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw invalidParams("source_blob.url is not a URL.");
  }
  const id = /^\/blobs\/sources\/([^/]+)$/.exec(url.pathname)?.[1];
  if (url.protocol !== "https:" || url.host !== apiHost.toLowerCase() || !id) {
    throw invalidParams(`source_blob.url must be a get_url from POST /sources on https://${apiHost}; other URLs are not fetched.`);
  }
  const source = await getSourceById(db, id);
  if (!source || source.accountId !== actor.accountId) throw invalidParams("source_blob.url names no source of yours.");
  if (source.size === null) throw invalidParams("Nothing has been uploaded to that source yet: PUT the tarball to its put_url first.");
  if (checksum && checksum.toLowerCase() !== source.checksum?.toLowerCase()) {
    throw invalidParams(`source_blob.checksum does not match the uploaded tarball (${source.checksum}).`);
  }
  return source;
}
