/**
 * Git's pkt-line framing: four hex digits giving the length of the line including
 * themselves, then the payload. `0000` is a flush packet. Pure: works on bytes and web
 * streams only, so the Worker and the tests share it.
 */

/** The longest pkt-line git sends or accepts: 65516 bytes of payload plus the length. */
export const MAX_PKT_LENGTH = 65520;

/** A flush packet: ends a list of lines. */
export const FLUSH = new Uint8Array([0x30, 0x30, 0x30, 0x30]);

/** A pkt-line stream that breaks the protocol; the message is safe to show the client. */
export class GitProtocolError extends Error {}

const encoder = new TextEncoder();

/** One pkt-line carrying `data` (a string is UTF-8 encoded). */
export function pktLine(data: string | Uint8Array): Uint8Array {
  const payload = typeof data === "string" ? encoder.encode(data) : data;
  const length = payload.length + 4;
  if (length > MAX_PKT_LENGTH) throw new RangeError(`a pkt-line carries at most ${MAX_PKT_LENGTH - 4} bytes`);
  const out = new Uint8Array(length);
  out.set(encoder.encode(length.toString(16).padStart(4, "0")));
  out.set(payload, 4);
  return out;
}

/** Joins byte arrays into one. */
export function concatBytes(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function parseLength(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < 4; i++) {
    const c = bytes[i]!;
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (digit < 0) throw new GitProtocolError("protocol error: bad line length character");
    n = n * 16 + digit;
  }
  return n;
}

/**
 * Reads pkt-lines from a byte stream, holding only what the current line needs; after
 * the lines, `rest()` hands over the remaining bytes (a pack) as a stream.
 */
export class PktLineReader {
  private buffer: Uint8Array = new Uint8Array(0);
  private done = false;
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }

  /** Buffers until `n` bytes are available; false when the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buffer.length < n && !this.done) {
      const { value, done } = await this.reader.read();
      if (done) this.done = true;
      else if (value.length) this.buffer = this.buffer.length ? concatBytes([this.buffer, value]) : value;
    }
    return this.buffer.length >= n;
  }

  private take(n: number): Uint8Array {
    const out = this.buffer.slice(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  /** The next line's payload, "flush" for `0000`, or null at a clean end of the stream. */
  async read(): Promise<Uint8Array | "flush" | null> {
    if (!(await this.fill(4))) {
      if (this.buffer.length) throw new GitProtocolError("protocol error: truncated line length");
      return null;
    }
    const length = parseLength(this.buffer);
    if (length === 0) {
      this.take(4);
      return "flush";
    }
    if (length < 4) throw new GitProtocolError(`protocol error: unexpected special packet ${length.toString(16).padStart(4, "0")}`);
    if (length > MAX_PKT_LENGTH) throw new GitProtocolError(`protocol error: line of ${length} bytes is too long`);
    if (!(await this.fill(length))) throw new GitProtocolError("protocol error: truncated line");
    return this.take(length).subarray(4);
  }

  /** Everything after the lines read so far, as a stream. */
  rest(): ReadableStream<Uint8Array> {
    let pending: Uint8Array | null = this.buffer.length ? this.buffer : null;
    this.buffer = new Uint8Array(0);
    const reader = this.reader;
    const ended = this.done;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (pending) {
          controller.enqueue(pending);
          pending = null;
          return;
        }
        if (ended) return controller.close();
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
  }

  /** Stops reading the underlying stream. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}
