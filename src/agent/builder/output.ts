/** Lines are sent at most this long after they were printed, so `git push` shows them live. */
export const FLUSH_MS = 100;
/** The contract's largest batch. */
const MAX_BATCH = 2_000;
/** Beyond this many unsent lines (a stalled control plane) new ones are counted, not kept. */
const MAX_PENDING = 50_000;
const RETRY_DELAYS_MS = [200, 1_000, 3_000];

/**
 * A build's output on its way to the control plane: lines are batched for up to FLUSH_MS,
 * sent one batch at a time and in order, retried a few times, and dropped (with a count
 * line) only when the control plane stays unreachable, since output must never stall a build.
 */
export class BuildOutput {
  private pending: string[] = [];
  private dropped = 0;
  private timer?: NodeJS.Timeout;
  private sending: Promise<void> | null = null;
  private closed = false;
  /** Every line, kept for the caller (tests, the error summary); bounded like pending. */
  readonly recent: string[] = [];

  constructor(
    private readonly send: (lines: string[]) => Promise<void>,
    private readonly onError: (err: Error) => void = () => {},
  ) {}

  /** Queues one line (without its newline). */
  line(text: string): void {
    if (this.closed) return;
    this.recent.push(text);
    if (this.recent.length > 200) this.recent.shift();
    if (this.pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending.push(text);
    this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** `-----> text`: a step. */
  topic(text: string): void {
    this.line(`-----> ${text}`);
  }

  /** Seven spaces: a detail of the current step. */
  detail(text: string): void {
    this.line(`       ${text}`);
  }

  /** ` !     text`: a warning or an error. */
  warn(text: string): void {
    this.line(` !     ${text}`);
  }

  /** Sends everything queued so far and resolves when it is delivered (or given up on). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.sending) await this.sending;
    if (this.dropped) {
      this.pending.push(` !     ${this.dropped} lines of output were dropped: the control plane did not take them in time`);
      this.dropped = 0;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0, MAX_BATCH);
    this.sending = this.deliver(batch).finally(() => (this.sending = null));
    await this.sending;
    if (this.pending.length) await this.flush();
  }

  /** Flushes and stops accepting lines. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private async deliver(batch: string[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(batch);
      } catch (err) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined) return this.onError(err as Error);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
