import { DurableObject } from "cloudflare:workers";
import { sseEvent, sseRetry } from "../logs/sse.ts";
import { formatLogLine, type LineFilter, type LineInput, LOG_HISTORY, type RecentQuery, type StoredLine, type SubscribeQuery } from "../logs/lines.ts";
import { LogDrainSender, type DrainStatus, type DrainTarget } from "../logs/drain-sender.ts";
import { LogSubscriber } from "../logs/subscriber.ts";
import type { TenantNetworkEnv } from "../lib/tenant-network.ts";
import { AppliedKeys } from "./applied.ts";
import { type ClockVars, clocksOf } from "../lib/clocks.ts";

/** Live tails one app may have open at once; with their bounded queues, a few dozen MB at most. */
export const MAX_SUBSCRIBERS = 50;

/**
 * One app's log: the last 1,500 lines in order, in SQLite storage so they survive
 * restarts of the Worker and of the object itself. Ids grow monotonically and are the
 * SSE event ids of log streams. Appends fan out to live tails (each with a bounded queue)
 * and to the app's drains (see LogDrainSender).
 */
export class LogChannel extends DurableObject {
  private readonly sql = this.ctx.storage.sql;
  private readonly subscribers = new Map<string, LogSubscriber>();
  /** The account each live tail is for. */
  private readonly accounts = new Map<string, string>();
  private readonly drains: LogDrainSender;
  private readonly applied: AppliedKeys;
  /** How often an idle tail gets a comment, so nothing on the way times it out (TAIL_KEEPALIVE_S). */
  private readonly keepAliveMs: number;
  private keepAliveTimer?: ReturnType<typeof setInterval>;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql.exec(
      "create table if not exists lines (id integer primary key autoincrement, ts integer not null, source text not null, dyno text not null, text text not null)",
    );
    this.drains = new LogDrainSender(this.sql, ctx.storage, env as TenantNetworkEnv);
    this.applied = new AppliedKeys(this.sql);
    this.keepAliveMs = clocksOf(env as ClockVars).tailKeepAliveMs;
  }

  /** Appends lines as `append` does, once per `key`: lines already appended under it are not again. */
  async appendOnce(key: string, lines: LineInput[]): Promise<StoredLine[]> {
    return this.applied.first(key) ? this.append(lines) : [];
  }

  /** Appends lines in the order given, trims history, and hands them to tails and drains; returns the stored lines. */
  async append(lines: LineInput[]): Promise<StoredLine[]> {
    const stored: StoredLine[] = [];
    for (const l of lines) {
      const row = this.sql
        .exec<{ id: number }>("insert into lines (ts, source, dyno, text) values (?, ?, ?, ?) returning id", l.ts, l.source, l.dyno, l.text)
        .one();
      stored.push({ id: row.id, ts: l.ts, source: l.source, dyno: l.dyno, text: l.text });
    }
    if (!stored.length) return stored;
    const head = stored[stored.length - 1]!.id;
    this.sql.exec("delete from lines where id <= ?", this.drains.retain(head - LOG_HISTORY, head));
    // Subscribers only queue (or skip); nothing here waits for a reader.
    for (const s of this.subscribers.values()) s.offer(stored);
    await this.drains.wake();
    return stored;
  }

  /** The newest `limit` matching lines (after `afterId`, when given), oldest first. */
  async recent(q: RecentQuery): Promise<StoredLine[]> {
    return this.select(q);
  }

  /**
   * Opens a live tail as an SSE byte stream. The history is read and the subscriber
   * registered in one synchronous step, so no append can fall between them: a resumed
   * stream has no gap and no duplicate. The id is for `unsubscribe`.
   */
  subscribe(q: SubscribeQuery): { id: string; stream: ReadableStream<Uint8Array> } {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) throw new Error("too many log streams are open for this app");
    const filter: LineFilter = { dyno: q.dyno, source: q.source };
    const history = this.select({ ...filter, limit: q.afterId ? LOG_HISTORY : q.lines, afterId: q.afterId });
    const id = crypto.randomUUID();
    const sub = new LogSubscriber(filter, q.deadline, () => this.leave(id));
    sub.write(sseRetry() + history.map((l) => sseEvent(l.id, formatLogLine(l))).join(""));
    this.subscribers.set(id, sub);
    if (q.account) this.accounts.set(id, q.account);
    this.keepAliveTimer ??= setInterval(() => {
      const now = Date.now();
      for (const s of this.subscribers.values()) s.keepAlive(now);
    }, this.keepAliveMs);
    return { id, stream: sub.stream };
  }

  /** Ends a tail whose client went away (the Worker sees the disconnect; a stream's cancel may not cross RPC). */
  async unsubscribe(id: string): Promise<void> {
    this.subscribers.get(id)?.close();
  }

  /** Ends every live tail of an account (it no longer reaches the app); returns how many. */
  async endStreamsOf(account: string): Promise<number> {
    let ended = 0;
    for (const [id, owner] of this.accounts) {
      if (owner !== account) continue;
      this.subscribers.get(id)?.close();
      ended++;
    }
    return ended;
  }

  /** Replaces the app's drains (the control plane sends the whole list after every change). */
  async setDrains(targets: DrainTarget[]): Promise<void> {
    const head = this.sql.exec<{ m: number | null }>("select max(id) as m from lines").one().m ?? 0;
    this.drains.set(targets, head);
  }

  /** Delivery state of the app's drains. */
  async drainStatus(): Promise<DrainStatus[]> {
    return this.drains.status();
  }

  /** Drain deliveries and their retries run here. */
  override async alarm(): Promise<void> {
    await this.drains.deliver();
  }

  private leave(id: string): void {
    this.subscribers.delete(id);
    this.accounts.delete(id);
    if (!this.subscribers.size && this.keepAliveTimer) {
      clearInterval(this.keepAliveTimer);
      this.keepAliveTimer = undefined;
    }
  }

  private select(q: RecentQuery): StoredLine[] {
    const where: string[] = ["id > ?"];
    const args: (string | number)[] = [q.afterId ?? 0];
    if (q.dyno) {
      where.push(q.dyno.includes(".") ? "dyno = ?" : "(dyno = ? or dyno like ? escape '\\')");
      args.push(q.dyno);
      if (!q.dyno.includes(".")) args.push(`${q.dyno.replace(/[\\%_]/g, "\\$&")}.%`);
    }
    if (q.source) {
      where.push("source = ?");
      args.push(q.source);
    }
    const rows = this.sql
      .exec<Record<string, SqlStorageValue>>(
        `select id, ts, source, dyno, text from lines where ${where.join(" and ")} order by id desc limit ?`,
        ...args,
        Math.min(q.limit, LOG_HISTORY),
      )
      .toArray();
    return rows.reverse() as unknown as StoredLine[];
  }
}
