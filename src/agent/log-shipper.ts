import type { LogLine } from "../protocol/host.ts";
import type { LogBuffer } from "./log-buffer.ts";

/** The contract's largest batch. */
const MAX_BATCH_LINES = 5_000;
/**
 * Keeps one request body under the control plane's 1 MB limit: a batch may pass this by
 * one line (10 kB at most) plus JSON escaping, so the margin is wide. A batch over the
 * limit would be refused and retried forever.
 */
const MAX_BATCH_BYTES = 768 * 1024;

/** How the shipper sends a batch and how often it looks for lines. */
export interface LogShipperOptions {
  buffer: LogBuffer;
  send: (lines: LogLine[]) => Promise<void>;
  intervalMs?: number;
  /** How long a line waits for company before it is shipped; keeps tail latency low without a request per line. */
  lingerMs?: number;
  /** Told about failed sends (the batch is kept and retried). */
  onError?: (err: unknown) => void;
}

/**
 * Moves lines from the bounded buffer to the control plane in batches. At most one batch is
 * held back for retry; while the control plane is unreachable the buffer fills and drops
 * (counted), so memory stays bounded however long the outage.
 */
export class LogShipper {
  private retry: LogLine[] | null = null;
  private timer?: NodeJS.Timeout;
  private soon?: NodeJS.Timeout;
  private inFlight: Promise<void> | null = null;
  private stopped = false;
  private failures = 0;

  constructor(private readonly o: LogShipperOptions) {}

  /** Starts the periodic shipping. */
  start(): void {
    this.o.buffer.onLine = () => this.nudge();
    this.schedule(this.o.intervalMs ?? 500);
  }

  /** Lines just arrived: ship them within `lingerMs`, unless the control plane is failing (then the back-off rules). */
  nudge(): void {
    if (this.soon || this.stopped || this.failures) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.flush();
    }, this.o.lingerMs ?? 10);
  }

  /**
   * Ships what is buffered now; resolves when the buffer is empty or a send failed. A flush
   * asked for while one runs follows it, so its caller knows every line before it has gone.
   */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    this.inFlight = this.ship().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async ship(): Promise<void> {
    try {
      for (;;) {
        const batch = this.retry ?? this.nextBatch();
        if (batch.length === 0) return;
        this.retry = batch;
        await this.o.send(batch);
        this.retry = null;
        this.failures = 0;
      }
    } catch (err) {
      this.failures++;
      this.o.onError?.(err);
    }
  }

  /** Stops shipping after one last flush. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.soon);
    await this.flush();
  }

  private nextBatch(): LogLine[] {
    const notices = this.o.buffer.takeDropNotices();
    return [...this.o.buffer.take(MAX_BATCH_LINES - notices.length, MAX_BATCH_BYTES), ...notices];
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(async () => {
      await this.flush();
      // After failures, wait longer (up to 30 s) so an outage is not hammered.
      const base = this.o.intervalMs ?? 500;
      this.schedule(this.failures ? Math.min(30_000, base * 2 ** this.failures) : base);
    }, ms);
  }
}
