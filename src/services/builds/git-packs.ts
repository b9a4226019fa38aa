import { and, asc, eq, inArray, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, gitPacks, type AppRow, type BuildRow, type GitPackRow } from "../../db/schema/index.ts";
import { verifyingStream, type Sha1 } from "../../git/pack.ts";
import { putStream } from "../../lib/r2-upload.ts";

/** SHA-1 with the Workers runtime's streaming digest (WebCrypto's digest() wants the whole input). */
export function digestStreamSha1(): Sha1 {
  const stream = new crypto.DigestStream("SHA-1");
  const writer = stream.getWriter();
  return {
    update: (bytes) => writer.write(bytes),
    digest: async () => {
      await writer.close();
      return new Uint8Array(await stream.digest);
    },
  };
}

/** Inserts the app's next pack row (size unset until stored); concurrent pushes retry on the unique seq. */
async function reservePack(db: Database, appId: string, commit: string): Promise<GitPackRow> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const next = sql`(select coalesce(max(${gitPacks.seq}), 0) + 1 from ${gitPacks} where ${gitPacks.appId} = ${appId})`;
    const [row] = await db
      .insert(gitPacks)
      .values({ appId, seq: next, blobKey: sql`${`git/${appId}/`} || ${next}::text || '.pack'`, commit })
      .onConflictDoNothing()
      .returning();
    if (row) return row;
  }
  throw new Error("could not reserve a pack sequence number");
}

/**
 * Stores a pushed pack in R2 while checking it. A pack that is too large, truncated or
 * corrupt leaves nothing behind (no object, no row) and the error says why.
 */
export async function storePack(
  db: Database,
  bucket: R2Bucket,
  app: AppRow,
  commit: string,
  pack: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<GitPackRow> {
  const row = await reservePack(db, app.id, commit);
  try {
    const { stream, summary } = verifyingStream(pack, digestStreamSha1(), maxBytes);
    await putStream(bucket, row.blobKey, stream, "application/x-git-packed-objects");
    const { size, checksum } = await summary;
    const [stored] = await db.update(gitPacks).set({ size, checksum }).where(eq(gitPacks.id, row.id)).returning();
    return stored!;
  } catch (err) {
    await db.delete(gitPacks).where(eq(gitPacks.id, row.id));
    await bucket.delete(row.blobKey).catch(() => {});
    throw err;
  }
}

/**
 * The packs a git build replays, in push order: every accepted pack of the app, then
 * the build's own. Packs of failed or other running builds are left out.
 */
export async function packsForBuild(db: Database, build: BuildRow): Promise<GitPackRow[]> {
  const own = build.packId ? eq(gitPacks.id, build.packId) : sql`false`;
  return db
    .select()
    .from(gitPacks)
    .where(and(eq(gitPacks.appId, build.appId), or(eq(gitPacks.accepted, true), own), sql`${gitPacks.size} is not null`))
    .orderBy(asc(gitPacks.seq));
}

/** Marks a built pack as part of the app's history and moves the deployed ref to its commit. */
export async function acceptPack(tx: Database, appId: string, packId: string): Promise<void> {
  const [pack] = await tx.update(gitPacks).set({ accepted: true }).where(eq(gitPacks.id, packId)).returning();
  if (!pack) return;
  const [total] = await tx
    .select({ size: sql<number>`coalesce(sum(${gitPacks.size}), 0)::bigint` })
    .from(gitPacks)
    .where(and(eq(gitPacks.appId, appId), eq(gitPacks.accepted, true)));
  await tx
    .update(apps)
    .set({ repoHead: pack.commit, repoSize: Number(total?.size ?? 0), updatedAt: sql`now()` })
    .where(eq(apps.id, appId));
}

/**
 * Deletes the stored bytes of packs whose build failed: they are never replayed, and a
 * later push resends their objects relative to the deployed ref. The rows stay, so a
 * sequence number is never handed out twice (build hosts cache packs by number).
 */
export async function discardPacks(db: Database, bucket: R2Bucket, packIds: string[]): Promise<void> {
  if (!packIds.length) return;
  const failed = await db
    .select({ blobKey: gitPacks.blobKey })
    .from(gitPacks)
    .where(and(inArray(gitPacks.id, packIds), eq(gitPacks.accepted, false)));
  await Promise.all(failed.map((p) => bucket.delete(p.blobKey).catch(() => {})));
}
