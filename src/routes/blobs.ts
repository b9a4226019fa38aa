import { Hono } from "hono";
import { verifyToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { bytesToHex } from "../lib/bytes.ts";
import { SlugArchiveError, TarCheck } from "../lib/tar-check.ts";
import { getSlugById, markSlugUploaded, MAX_SLUG_BYTES } from "../services/slugs.ts";

const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * Reads a slug upload to its end through gunzip and the tar check; rejects with
 * SlugArchiveError, cancelling `body` as soon as the slug is refused.
 */
async function checkSlugArchive(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<void> {
  const check = new TarCheck(maxBytes);
  let refusal: SlugArchiveError | null = null;
  let seen = 0;
  // The gzip magic is checked first so a plain tar, or anything else, gets a clear answer.
  const magic = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, ctl) {
      for (let i = 0; seen < 2 && i < chunk.length; i++, seen++) if (chunk[i] !== GZIP_MAGIC[seen]) throw (refusal = new SlugArchiveError("invalid", "it is not gzip-compressed"));
      ctl.enqueue(chunk);
    },
    flush() {
      if (seen < 2) throw (refusal = new SlugArchiveError("invalid", "it is not gzip-compressed"));
    },
  });
  const reader = body.pipeThrough(magic).pipeThrough(new DecompressionStream("gzip")).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      check.push(value);
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    if (refusal) throw refusal;
    if (err instanceof SlugArchiveError) throw err;
    throw new SlugArchiveError("invalid", "its gzip stream is corrupt or truncated");
  }
  check.end();
}

/**
 * Signed upload URLs (what S3 pre-signed URLs are on Heroku): `PUT /blobs/slugs/{id}`
 * stores a slug tarball in R2. The signature names the slug and expires; the body streams
 * straight into R2 while its SHA-256 is computed and, on a second branch, it is unpacked
 * and its tar headers checked. A refused slug is deleted and stays un-uploaded, so it
 * cannot be released, and the same URL may be used again for a good one.
 */
export const blobsRoutes = new Hono<AppEnv>().put("/blobs/slugs/:id", async (c) => {
  const id = c.req.param("id");
  await verifyToken(c.env.COMMAND_SIGNING_KEY, c.req.query("token") ?? "", "slug-upload", id);
  const slug = await getSlugById(c.var.db, id);
  if (!slug) throw new ApiError("not_found", "Couldn't find that slug.", "slug");
  if (slug.size !== null) throw new ApiError("conflict", "This slug has already been uploaded.");
  const length = Number(c.req.header("Content-Length"));
  if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
  if (length > MAX_SLUG_BYTES) throw new ApiError("payload_too_large", `Slugs may be at most ${MAX_SLUG_BYTES / 1024 / 1024} MB.`);
  const [toStore, toCheck] = c.req.raw.body!.tee();
  const digest = new crypto.DigestStream("SHA-256");
  const hasher = digest.getWriter();
  let gate: TransformStreamDefaultController<Uint8Array> | undefined;
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    start: (ctl) => void (gate = ctl),
    async transform(chunk, ctl) {
      await hasher.write(chunk);
      ctl.enqueue(chunk);
    },
    flush: () => hasher.close(),
  });
  // A refusal errors the stored branch at once, so a bad slug is not stored to its end.
  const checking = checkSlugArchive(toCheck, MAX_SLUG_BYTES).catch((err: unknown) => {
    try {
      gate?.error(err);
    } catch {
      // the stored branch has already finished
    }
    throw err;
  });
  const storing = c.env.BLOBS.put(slug.blobKey, toStore.pipeThrough(hashing).pipeThrough(new FixedLengthStream(length)), {
    httpMetadata: { contentType: "application/gzip" },
  });
  const [stored, checked] = await Promise.allSettled([storing, checking]);
  if (stored.status === "rejected" || checked.status === "rejected") {
    digest.digest.catch(() => {});
    await hasher.abort().catch(() => {});
    await c.env.BLOBS.delete(slug.blobKey);
    const err: unknown = checked.status === "rejected" ? checked.reason : stored.status === "rejected" ? stored.reason : null;
    if (err instanceof SlugArchiveError) {
      throw new ApiError(err.kind === "too_large" ? "payload_too_large" : "invalid_params", `The slug was refused: ${err.message}.`);
    }
    throw err;
  }
  const checksum = `SHA256:${bytesToHex(new Uint8Array(await digest.digest))}`;
  await markSlugUploaded(c.var.db, id, length, checksum);
  return c.body(null, 200);
});
