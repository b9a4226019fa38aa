import { concatBytes } from "../git/pkt-line.ts";
import { bytesToHex } from "./bytes.ts";

/**
 * R2 multipart parts are all this size but the last (R2 wants equal parts, each at least
 * 5 MiB); it is also the most a stream upload holds in memory at once.
 */
export const PART_BYTES = 8 * 1024 * 1024;

/** Collects chunks until a full part (or the end) is there; keeps the remainder. */
class PartBuffer {
  private chunks: Uint8Array[] = [];
  private size = 0;

  add(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  get full(): boolean {
    return this.size >= PART_BYTES;
  }

  /** Takes one part of up to PART_BYTES. */
  take(): Uint8Array {
    const all = concatBytes(this.chunks);
    const part = all.slice(0, PART_BYTES);
    const rest = all.subarray(PART_BYTES);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
    return part;
  }
}

/**
 * Stores a stream of unknown length in R2 (a push arrives chunked, so its size is known
 * only at the end): one put when it fits in a part, else a multipart upload. A stream
 * that errors aborts the upload, so nothing is left behind. Returns the bytes stored.
 */
export async function putStream(bucket: R2Bucket, key: string, stream: ReadableStream<Uint8Array>, contentType: string): Promise<number> {
  const reader = stream.getReader();
  const buffer = new PartBuffer();
  let upload: R2MultipartUpload | null = null;
  const parts: R2UploadedPart[] = [];
  let total = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer.add(value);
      total += value.length;
      while (buffer.full) {
        upload ??= await bucket.createMultipartUpload(key, { httpMetadata: { contentType } });
        parts.push(await upload.uploadPart(parts.length + 1, buffer.take()));
      }
    }
    const last = buffer.take();
    if (!upload) {
      await bucket.put(key, last, { httpMetadata: { contentType } });
      return total;
    }
    if (last.length) parts.push(await upload.uploadPart(parts.length + 1, last));
    await upload.complete(parts);
    return total;
  } catch (err) {
    await upload?.abort().catch(() => {});
    await reader.cancel(err).catch(() => {});
    throw err;
  }
}

/**
 * Stores a body of known length in R2 (FixedLengthStream lets R2 take it as a stream),
 * computing its SHA-256 on the way; returns Heroku's `SHA256:<hex>` checksum.
 */
export async function putHashed(bucket: R2Bucket, key: string, body: ReadableStream<Uint8Array>, length: number, contentType: string): Promise<string> {
  const [toStore, toHash] = body.tee();
  const digest = new crypto.DigestStream("SHA-256");
  const hashing = toHash.pipeTo(digest);
  await bucket.put(key, toStore.pipeThrough(new FixedLengthStream(length)), { httpMetadata: { contentType } });
  await hashing;
  return `SHA256:${bytesToHex(new Uint8Array(await digest.digest))}`;
}
