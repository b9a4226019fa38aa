import { ApiError } from "../../errors.ts";
import { drainingOnCancel } from "../../lib/drain.ts";
import { bytesToHex } from "../../lib/bytes.ts";
import { MAX_UNPACKED_SLUG_BYTES, SlugArchiveError, TarCheck } from "../../lib/tar-check.ts";

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
      for (let i = 0; seen < 2 && i < chunk.length; i++, seen++)
        if (chunk[i] !== GZIP_MAGIC[seen]) throw (refusal = new SlugArchiveError("invalid", "it is not gzip-compressed"));
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
 * Stores a slug tarball in R2 while its SHA-256 is computed and, on a second branch, it is
 * unpacked and its tar headers checked. A refused slug is deleted again and the refusal is
 * an ApiError (413 past the unpacked limit, 422 otherwise). Resolves to its checksum. The
 * Slug API's uploads and the slugs builds make both come through here.
 */
export async function putCheckedSlug(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array>, length: number): Promise<string> {
  // A refusal part-way reads off the rest of the upload before it is answered (see drainReader).
  const source = drainingOnCancel(body);
  const [toStore, toCheck] = source.stream.tee();
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
  const checking = checkSlugArchive(toCheck, MAX_UNPACKED_SLUG_BYTES).catch((err: unknown) => {
    try {
      gate?.error(err);
    } catch {
      // the stored branch has already finished
    }
    throw err;
  });
  const storing = bucket.put(key, toStore.pipeThrough(hashing).pipeThrough(new FixedLengthStream(length)), {
    httpMetadata: { contentType: "application/gzip" },
  });
  const [stored, checked] = await Promise.allSettled([storing, checking]);
  if (stored.status === "rejected" || checked.status === "rejected") {
    digest.digest.catch(() => {});
    await hasher.abort().catch(() => {});
    await bucket.delete(key);
    await source.finish();
    const err: unknown = checked.status === "rejected" ? checked.reason : stored.status === "rejected" ? stored.reason : null;
    if (err instanceof SlugArchiveError) {
      throw new ApiError(err.kind === "too_large" ? "payload_too_large" : "invalid_params", `The slug was refused: ${err.message}.`);
    }
    throw err;
  }
  return `SHA256:${bytesToHex(new Uint8Array(await digest.digest))}`;
}
