import { bytesToHex } from "../lib/bytes.ts";
import { concatBytes } from "./pkt-line.ts";

/**
 * Checks a pack as it streams past, without inflating it: the `PACK` header, version
 * and object count, and the trailing SHA-1 over everything before it. Whatever this
 * cannot see (a corrupt object with a matching checksum) the build's `git index-pack`
 * catches. Pure; the SHA-1 comes from the caller, so the Worker can use its own digest.
 */

/** A pack that is not one; the message is safe to show the pusher. */
export class PackError extends Error {}

/** A streaming SHA-1. */
export interface Sha1 {
  update(bytes: Uint8Array): void | Promise<void>;
  digest(): Promise<Uint8Array>;
}

/** What a verified pack holds. */
export interface PackSummary {
  version: number;
  objects: number;
  /** Bytes in the pack, trailer included. */
  size: number;
  /** The pack's own trailing checksum, hex. */
  checksum: string;
}

const HEADER_BYTES = 12;
const TRAILER_BYTES = 20;
const SIGNATURE = [0x50, 0x41, 0x43, 0x4b]; // "PACK"

/** Follows one pack's bytes in order; `finish()` says whether they made a whole pack. */
export class PackVerifier {
  private head: Uint8Array = new Uint8Array(0);
  /** The last 20 bytes seen: the trailer, if the pack ends here. */
  private tail: Uint8Array = new Uint8Array(0);
  private size = 0;
  private header: { version: number; objects: number } | null = null;

  constructor(private readonly sha1: Sha1) {}

  /** Feeds the next bytes; throws as soon as the header is wrong. */
  async push(chunk: Uint8Array): Promise<void> {
    if (!chunk.length) return;
    this.size += chunk.length;
    if (!this.header) {
      this.head = concatBytes([this.head, chunk.subarray(0, HEADER_BYTES - this.head.length)]);
      if (this.head.length === HEADER_BYTES) this.header = parseHeader(this.head);
    }
    // Everything but the newest 20 bytes is covered by the checksum.
    const joined = concatBytes([this.tail, chunk]);
    const hashable = joined.length - TRAILER_BYTES;
    // The tail is copied out first: a digest may take ownership of the bytes it is given.
    this.tail = joined.slice(Math.max(0, hashable));
    if (hashable > 0) await this.sha1.update(joined.subarray(0, hashable));
  }

  /** Checks the end of the pack and describes it; throws PackError when it is not whole. */
  async finish(): Promise<PackSummary> {
    if (this.size === 0) throw new PackError("the push carried no pack");
    if (!this.header) throw new PackError("the pack is truncated: its header is incomplete");
    if (this.size < HEADER_BYTES + TRAILER_BYTES) throw new PackError("the pack is truncated: its checksum is missing");
    if (this.header.objects > 0 && this.size === HEADER_BYTES + TRAILER_BYTES) throw new PackError("the pack is truncated: it holds no objects");
    const expected = bytesToHex(await this.sha1.digest());
    const actual = bytesToHex(this.tail);
    if (expected !== actual) throw new PackError("the pack is corrupt or truncated: its checksum does not match");
    return { ...this.header, size: this.size, checksum: actual };
  }
}

function parseHeader(head: Uint8Array): { version: number; objects: number } {
  if (!SIGNATURE.every((b, i) => head[i] === b)) throw new PackError("the data sent is not a git pack");
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw new PackError(`pack version ${version} is not supported`);
  return { version, objects: view.getUint32(8) };
}

/** The byte limit a stream went past. */
export class TooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the push is larger than ${Math.round(limit / 1024 / 1024)} MB`);
  }
}

/**
 * Passes a pack through unchanged while verifying it and counting bytes. The stream
 * errors (so a store fed from it fails) past `maxBytes` or when the pack is not whole;
 * `summary` settles once it ends.
 */
export function verifyingStream(
  input: ReadableStream<Uint8Array>,
  sha1: Sha1,
  maxBytes: number,
): { stream: ReadableStream<Uint8Array>; summary: Promise<PackSummary> } {
  const verifier = new PackVerifier(sha1);
  let seen = 0;
  let settle!: { resolve: (s: PackSummary) => void; reject: (e: unknown) => void };
  const summary = new Promise<PackSummary>((resolve, reject) => (settle = { resolve, reject }));
  summary.catch(() => {});
  // Errors also reject `summary`; one from the input itself reaches only the stream's reader.
  const failing = (err: unknown): never => {
    settle.reject(err);
    throw err;
  };
  const check = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, controller) {
      seen += chunk.length;
      if (seen > maxBytes) failing(new TooLargeError(maxBytes));
      await verifier.push(chunk).catch(failing);
      controller.enqueue(chunk);
    },
    async flush() {
      settle.resolve(await verifier.finish().catch(failing));
    },
  });
  // The input is left uncancelled on failure, so the caller can still read (drain) the rest.
  return { stream: input.pipeThrough(check, { preventCancel: true }), summary };
}
