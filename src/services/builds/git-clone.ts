import { and, desc, eq, isNotNull, notInArray } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { type BuildRow, builds } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import { verifyingStream } from "../../git/pack.ts";
import { putStream } from "../../lib/r2-upload.ts";
import { digestStreamSha1 } from "./git-packs.ts";

/** `pack-<sha1>.pack` or `.idx`: the only names a build may upload for cloning. */
export const CLONE_FILE = /^(pack-[0-9a-f]{40})\.(pack|idx)$/;

/** Where a build's clone files live in R2. */
export const cloneKey = (build: Pick<BuildRow, "appId" | "id">, file: string) => `git/${build.appId}/clone/${build.id}/${file}`;

/**
 * Stores one of a git build's clone files (its pack, checked as a pack while it streams, then
 * its index). The index comes last: once it is stored, the build names the pack and
 * `git clone` is served from it.
 */
export async function storeCloneFile(
  db: Database,
  bucket: R2Bucket,
  build: BuildRow,
  file: string,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<void> {
  const m = CLONE_FILE.exec(file);
  if (!m) throw new ApiError("invalid_params", "Clone files are named pack-<sha1>.pack and pack-<sha1>.idx.");
  if (build.status !== "pending") throw new ApiError("conflict", "This build has already ended.");
  if (build.sourceKind !== "git") throw new ApiError("invalid_params", "Only git builds are cloned.");
  const [, name, ext] = m;
  const key = cloneKey(build, file);
  if (ext === "pack") {
    const { stream, summary } = verifyingStream(body, digestStreamSha1(), maxBytes);
    try {
      await putStream(bucket, key, stream, "application/x-git-packed-objects");
      await summary;
    } catch (err) {
      await bucket.delete(key).catch(() => {});
      throw new ApiError("invalid_params", `The pack was refused: ${(err as Error).message}`);
    }
    return;
  }
  if (!(await bucket.head(cloneKey(build, `${name}.pack`)))) throw new ApiError("conflict", "Upload the pack before its index.");
  await putStream(bucket, key, body, "application/octet-stream");
  await db.update(builds).set({ repositoryPack: name }).where(eq(builds.id, build.id));
  // An app keeps two: this build's and the one clones are served from until it succeeds.
  const current = await cloneSource(db, build.appId);
  const stale = await db
    .select()
    .from(builds)
    .where(and(eq(builds.appId, build.appId), isNotNull(builds.repositoryPack), notInArray(builds.id, [build.id, ...(current ? [current.build.id] : [])])));
  for (const old of stale) {
    await bucket.delete([cloneKey(old, `${old.repositoryPack}.pack`), cloneKey(old, `${old.repositoryPack}.idx`)]);
    await db.update(builds).set({ repositoryPack: null }).where(eq(builds.id, old.id));
  }
}

/** What `git clone` of an app is served from: its latest successful git build that stored a pack. */
export async function cloneSource(db: Database, appId: string): Promise<{ build: BuildRow; commit: string; pack: string } | null> {
  const [build] = await db
    .select()
    .from(builds)
    .where(and(eq(builds.appId, appId), eq(builds.status, "succeeded"), isNotNull(builds.repositoryPack), isNotNull(builds.commit)))
    .orderBy(desc(builds.createdAt))
    .limit(1);
  return build ? { build, commit: build.commit!, pack: build.repositoryPack! } : null;
}
