import { rfc3339Micros } from "./logplex.ts";
import { sseComment, sseEvent } from "./sse.ts";
import { type FilterableLine, formatLogLine, type LineFilter, lineMatches } from "./lines.ts";

/**
 * Bytes a subscriber may have queued and unread (one append may pass it once). Past this
 * the client is not keeping up: its lines are skipped (counted) instead of queued, so a
 * slow reader costs at most this much memory and never slows appends or other readers.
 * It holds more than one of the agent's batches (at most 768 kB), so a reader that keeps
 * up loses nothing to bursts.
 */
export const SUBSCRIBER_QUEUE_BYTES = 1024 * 1024;
/** A reader that has taken nothing for this long is gone; its stream is closed. */
export const STUCK_MS = 60_000;

const encoder = new TextEncoder();

/**
 * One live tail: an SSE byte stream fed by LogChannel.append. Used inside LogChannel only;
 * its stream travels to the Worker over RPC and from there to the client. It ends at its
 * deadline, when the Worker reports the client gone (LogChannel.unsubscribe), or when its
 * queue has stayed full for STUCK_MS.
 */
export class LogSubscriber {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private skipped = 0;
  private skippedSince = 0;
  private fullSince = 0;
  private closed = false;
  private readonly deadlineTimer: ReturnType<typeof setTimeout>;

  constructor(
    private readonly filter: LineFilter,
    deadline: number,
    private readonly onClose: (s: LogSubscriber) => void,
  ) {
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (c) => void (this.controller = c),
        // The reader made room: tell it what it missed before anything new.
        pull: () => this.flushSkipped(),
        cancel: () => this.close(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: SUBSCRIBER_QUEUE_BYTES }),
    );
    // Past its deadline the stream ends; the client reconnects with Last-Event-ID (or is refused once its token expired).
    this.deadlineTimer = setTimeout(() => this.close(), Math.max(0, deadline - Date.now()));
  }

  /** Queues text whatever the queue holds: the start of the stream (retry field and history). */
  write(text: string): void {
    if (!this.closed && text) this.controller.enqueue(encoder.encode(text));
  }

  /** Offers newly appended lines: queued when there is room, otherwise skipped and counted. */
  offer(lines: FilterableLine[]): void {
    if (this.closed) return;
    const matching = lines.filter((l) => lineMatches(l, this.filter));
    if (!matching.length) return;
    if ((this.controller.desiredSize ?? 0) <= 0) {
      if (!this.skipped) this.skippedSince = matching[0]!.ts;
      this.skipped += matching.length;
      this.fullSince ||= Date.now();
      return;
    }
    this.fullSince = 0;
    this.flushSkipped();
    this.write(matching.map((l) => sseEvent(l.id, formatLogLine(l))).join(""));
  }

  /** The periodic comment that keeps an idle stream open; ends a stream whose reader is gone. */
  keepAlive(now: number): void {
    if (this.closed) return;
    if ((this.controller.desiredSize ?? 0) > 0) {
      this.fullSince = 0;
      this.write(sseComment("keep-alive"));
    } else if (this.fullSince && now - this.fullSince > STUCK_MS) {
      this.close();
    }
  }

  /** Ends the stream (what is queued is still delivered) and leaves the channel. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.deadlineTimer);
    try {
      this.controller.close();
    } catch {
      // Already cancelled by the reader.
    }
    this.onClose(this);
  }

  /** Heroku's notice for a tail that fell behind; it carries no id, so resuming still works by line id. */
  private flushSkipped(): void {
    if (!this.skipped || this.closed) return;
    const text = `Error L11 (Tail buffer overflow) -> This tail client isn't keeping up with log messages. ${this.skipped} messages dropped since ${rfc3339Micros(this.skippedSince)}.`;
    this.skipped = 0;
    this.controller.enqueue(encoder.encode(sseEvent(null, formatLogLine({ ts: Date.now() * 1000, source: "heroku", dyno: "logplex", text }))));
  }
}
