import type { LogLine } from "../protocol/host.ts";

/** Longest line shipped, in bytes; Heroku's log router cuts lines at 10 kB too. */
export const MAX_LINE_BYTES = 10_000;
/** Appended to a line that was cut at MAX_LINE_BYTES. */
export const TRUNCATED_MARKER = " [truncated]";
/** Least time between two drop notices of one app, so a long flood logs a notice a second, not a batch. */
export const DROP_NOTICE_MS = 1_000;

const NEWLINE = 0x0a;

/** Where log lines go: dyno output and platform events, one call per line. */
export type LogSink = (line: LogLine) => void;

/** Decodes the first `limit` bytes without splitting a UTF-8 sequence. */
function decodeCut(bytes: Buffer, limit: number): string {
  let end = Math.min(limit, bytes.length);
  while (end > 0 && end < bytes.length && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/**
 * Splits a byte stream into lines. Memory stays bounded whatever the stream does: a line
 * longer than MAX_LINE_BYTES is emitted cut, with the marker, and its rest is skipped up
 * to the next newline.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private skipping = false;

  constructor(private readonly emit: (text: string) => void) {}

  /** Feeds one chunk; emits every line it completes. */
  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.skipping) this.keep(chunk.subarray(start, end));
      if (nl === -1) return;
      if (this.skipping) this.skipping = false;
      else this.flushLine();
      start = nl + 1;
    }
  }

  /** Emits what is left when the stream ends without a final newline. */
  end(): void {
    if (!this.skipping && this.pendingBytes > 0) this.flushLine();
    this.skipping = false;
  }

  private keep(part: Buffer): void {
    if (part.length === 0) return;
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (this.pendingBytes > MAX_LINE_BYTES) {
      const text = decodeCut(Buffer.concat(this.pending, this.pendingBytes), MAX_LINE_BYTES);
      this.reset();
      this.skipping = true;
      this.emit(text + TRUNCATED_MARKER);
    }
  }

  private flushLine(): void {
    let text = Buffer.concat(this.pending, this.pendingBytes).toString("utf8");
    this.reset();
    if (text.endsWith("\r")) text = text.slice(0, -1);
    this.emit(text);
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/**
 * A bounded queue of log lines between the dynos and the shipper. A dyno that logs faster
 * than lines can be shipped loses lines here (counted) instead of blocking the agent or
 * growing its memory.
 */
export class LogBuffer {
  private lines: LogLine[] = [];
  private head = 0;
  private droppedTotal = 0;
  private droppedUnreported = 0;
  /** Per app: lines dropped since its last notice, and when the dropping began. */
  private readonly drops = new Map<string, { count: number; since: number; noticedAt: number }>();
  /** Told after every queued line (the shipper uses it to ship promptly). */
  onLine?: () => void;

  constructor(readonly capacity = 20_000) {}

  /** The sink for dynos: queues the line, or drops and counts it when full. */
  readonly push: LogSink = (line) => {
    if (this.size >= this.capacity) {
      this.droppedTotal++;
      this.droppedUnreported++;
      const d = this.drops.get(line.app_id);
      if (!d) this.drops.set(line.app_id, { count: 1, since: line.ts, noticedAt: 0 });
      else if (d.count++ === 0) d.since = line.ts;
      return;
    }
    this.lines.push(line);
    this.onLine?.();
  };

  /**
   * Heroku's notice for each app that lost lines, at most one per app per DROP_NOTICE_MS:
   * `heroku[logplex]: Error L10 (output buffer overflow): N messages dropped since ...`.
   * Notices are not queued in the buffer, so they get out even while it is full.
   */
  takeDropNotices(now = Date.now()): LogLine[] {
    const out: LogLine[] = [];
    for (const [appId, d] of this.drops) {
      if (!d.count || now - d.noticedAt < DROP_NOTICE_MS) continue;
      const since = new Date(d.since).toISOString().replace(/\.\d{3}Z$/, "+00:00");
      out.push({
        app_id: appId,
        dyno: "logplex",
        source: "heroku",
        text: `Error L10 (output buffer overflow): ${d.count} messages dropped since ${since}.`,
        ts: now,
      });
      d.count = 0;
      d.noticedAt = now;
    }
    // Apps that have been quiet for a while are forgotten, so the map stays small.
    for (const [appId, d] of this.drops) if (!d.count && now - d.noticedAt > 60_000) this.drops.delete(appId);
    return out;
  }

  /** Lines waiting to be shipped. */
  get size(): number {
    return this.lines.length - this.head;
  }

  /** Lines dropped since the buffer was made. */
  get dropped(): number {
    return this.droppedTotal;
  }

  /** Removes and returns up to `max` lines, oldest first, stopping once about `maxBytes` are taken. */
  take(max: number, maxBytes = Infinity): LogLine[] {
    const limit = Math.min(this.lines.length, this.head + max);
    let end = this.head;
    let bytes = 0;
    while (end < limit && bytes < maxBytes) bytes += this.lines[end++]!.text.length + 100; // + the JSON around it
    const out = this.lines.slice(this.head, end);
    this.head = end;
    // Compact now and then instead of shifting on every take.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** The drops since the last call, for the heartbeat's dropped_log_lines. */
  takeDropped(): number {
    const n = this.droppedUnreported;
    this.droppedUnreported = 0;
    return n;
  }

  /** Gives back a count that could not be reported, so it is sent next time. */
  restoreDropped(n: number): void {
    this.droppedUnreported += n;
  }
}
