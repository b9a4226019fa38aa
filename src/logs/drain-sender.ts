import { connect } from "cloudflare:sockets";
import { type TenantNetworkEnv, tenantConnect, tenantFetch } from "../lib/tenant-network.ts";
import { drainHost } from "./drain-url.ts";
import { logplexFrame, logplexRequest, rfc3339Micros, type FrameLine } from "./logplex.ts";

/** A drain as LogChannel is told about it by the control plane. */
export interface DrainTarget {
  id: string;
  url: string;
  token: string;
}

/** What an operator (or a test) can see of a drain's delivery. */
export interface DrainStatus extends DrainTarget {
  /** Id of the last line delivered (or skipped as dropped). */
  cursor: number;
  failures: number;
  /** Lines lost while the endpoint was down, not yet reported to it. */
  pendingDropped: number;
  droppedTotal: number;
  delivered: number;
}

/**
 * Lines a drain may fall behind before the oldest are dropped (and counted). This bounds
 * what an endpoint that stays down costs: the channel keeps at most this many lines.
 */
export const DRAIN_BACKLOG = 10_000;
const BATCH_LINES = 500;
/** A short linger after an append, so a burst leaves in one POST. */
const BATCH_DELAY_MS = 100;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const SEND_TIMEOUT_MS = 10_000;
/** Batches one drain sends per alarm before yielding to the others. */
const BATCHES_PER_RUN = 20;

type DrainRow = {
  id: string;
  url: string;
  token: string;
  cursor: number;
  failures: number;
  next_at: number;
  dropped: number;
  dropped_since: number;
  dropped_total: number;
  delivered: number;
};

/**
 * Forwards an app's log lines to its drains in Heroku's logplex framing. Runs inside
 * LogChannel: each drain keeps a cursor into the channel's `lines` table, so what is
 * pending is simply the lines after it; deliveries run from the object's alarm, failures
 * back off exponentially, and a drain that falls DRAIN_BACKLOG behind loses its oldest
 * lines, counted and reported to it (Heroku's L10) once it answers again.
 */
export class LogDrainSender {
  private delivering = false;
  private count: number;

  constructor(
    private readonly sql: SqlStorage,
    private readonly storage: DurableObjectStorage,
    /** Where tenants' endpoints are reached through (see tenantFetch). */
    private readonly network: TenantNetworkEnv = {},
  ) {
    sql.exec(
      "create table if not exists drains (id text primary key, url text not null, token text not null, cursor integer not null, failures integer not null default 0, next_at integer not null default 0, dropped integer not null default 0, dropped_since integer not null default 0, dropped_total integer not null default 0, delivered integer not null default 0)",
    );
    this.count = sql.exec<{ n: number }>("select count(*) as n from drains").one().n;
  }

  /** Replaces the set of drains; a new drain starts after the newest line (`head`). */
  set(targets: DrainTarget[], head: number): void {
    const keep = new Set(targets.map((t) => t.id));
    for (const row of this.sql.exec<{ id: string }>("select id from drains").toArray()) {
      if (!keep.has(row.id)) this.sql.exec("delete from drains where id = ?", row.id);
    }
    for (const t of targets) {
      this.sql.exec(
        "insert into drains (id, url, token, cursor) values (?, ?, ?, ?) on conflict (id) do update set url = excluded.url, token = excluded.token",
        t.id,
        t.url,
        t.token,
        head,
      );
    }
    this.count = targets.length;
  }

  /**
   * The lowest line id to delete up to, given that history alone would delete up to `cut`:
   * lines drains still need are kept, within DRAIN_BACKLOG of `head`; drains further behind
   * skip ahead and count what they lost.
   */
  retain(cut: number, head: number): number {
    if (!this.count) return cut;
    const floor = head - DRAIN_BACKLOG;
    const min = this.sql.exec<{ m: number }>("select min(cursor) as m from drains").one().m;
    if (min >= floor) return Math.min(cut, min);
    this.sql.exec(
      "update drains set dropped = dropped + (? - cursor), dropped_total = dropped_total + (? - cursor), dropped_since = case when dropped = 0 then ? else dropped_since end, cursor = ? where cursor < ?",
      floor,
      floor,
      Date.now() * 1000,
      floor,
      floor,
    );
    return Math.min(cut, floor);
  }

  /** After an append: makes sure a delivery is due soon, unless every drain is backing off. */
  async wake(): Promise<void> {
    if (!this.count || this.delivering) return;
    const at = await this.storage.getAlarm();
    const soon = Date.now() + BATCH_DELAY_MS;
    if (at !== null && at <= soon) return;
    const healthy = this.sql.exec<{ n: number }>("select count(*) as n from drains where failures = 0").one().n;
    if (at === null || healthy > 0) await this.storage.setAlarm(soon);
  }

  /** The alarm's work: one round of deliveries to every due drain, then the next alarm. */
  async deliver(): Promise<void> {
    if (this.delivering) return;
    this.delivering = true;
    try {
      const head = this.head();
      const due = this.sql.exec<DrainRow>("select * from drains where cursor < ? and next_at <= ?", head, Date.now()).toArray();
      await Promise.all(due.map((d) => this.sendBatches(d)));
    } finally {
      this.delivering = false;
    }
    const next = this.sql
      .exec<{ at: number | null }>("select min(case when failures > 0 then next_at else 0 end) as at from drains where cursor < ?", this.head())
      .one().at;
    if (next !== null) await this.storage.setAlarm(Math.max(next, Date.now()));
  }

  /** Delivery state of every drain. */
  status(): DrainStatus[] {
    return this.sql
      .exec<DrainRow>("select * from drains order by id")
      .toArray()
      .map((r) => ({
        id: r.id,
        url: r.url,
        token: r.token,
        cursor: r.cursor,
        failures: r.failures,
        pendingDropped: r.dropped,
        droppedTotal: r.dropped_total,
        delivered: r.delivered,
      }));
  }

  private head(): number {
    return this.sql.exec<{ m: number | null }>("select max(id) as m from lines").one().m ?? 0;
  }

  private async sendBatches(drain: DrainRow): Promise<void> {
    for (let i = 0; i < BATCHES_PER_RUN; i++) {
      const row = this.sql.exec<DrainRow>("select * from drains where id = ?", drain.id).toArray()[0];
      if (!row) return; // removed meanwhile
      const lines = this.sql
        .exec<{ id: number; ts: number; source: string; dyno: string; text: string }>(
          "select id, ts, source, dyno, text from lines where id > ? order by id limit ?",
          row.cursor,
          BATCH_LINES,
        )
        .toArray();
      if (!lines.length) return;
      const notice: FrameLine[] = row.dropped
        ? [
            {
              ts: Date.now() * 1000,
              source: "heroku",
              dyno: "logplex",
              text: `Error L10 (output buffer overflow): ${row.dropped} messages dropped since ${rfc3339Micros(row.dropped_since)}.`,
            },
          ]
        : [];
      if (!(await this.post(row, [...notice, ...lines]))) {
        const failures = row.failures + 1;
        const wait = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1));
        this.sql.exec("update drains set failures = ?, next_at = ? where id = ?", failures, Date.now() + wait, row.id);
        return;
      }
      // Drops that happened while this request was out stay counted for the next one.
      this.sql.exec(
        "update drains set cursor = max(cursor, ?), failures = 0, next_at = 0, dropped = dropped - ?, dropped_since = case when dropped - ? = 0 then 0 else dropped_since end, delivered = delivered + ? where id = ?",
        lines[lines.length - 1]!.id,
        row.dropped,
        row.dropped,
        lines.length,
        row.id,
      );
    }
  }

  /** One batch to the drain: a POST, or frames over syslog's TCP; true when the endpoint took it. */
  private async post(drain: DrainRow, lines: FrameLine[]): Promise<boolean> {
    return drain.url.startsWith("syslog") ? sendSyslog(this.network, drain, lines) : postLogplex(this.network, drain, lines);
  }
}

/** One POST of a logplex body. Redirects are not followed: a drain is the URL it was added with. */
async function postLogplex(network: TenantNetworkEnv, drain: DrainTarget, lines: FrameLine[]): Promise<boolean> {
  const { body, headers } = logplexRequest(lines, drain.token);
  try {
    const res = await tenantFetch(network, drain.url, { method: "POST", body, headers, redirect: "manual", signal: AbortSignal.timeout(SEND_TIMEOUT_MS) });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

const encoder = new TextEncoder();

/**
 * A batch to a syslog drain: RFC 5424 messages with octet counting (RFC 6587) over one TCP
 * connection, in TLS for `syslog+tls`, with the drain's token as each message's hostname,
 * as Heroku sends them. Taken once every byte is written and the connection closed cleanly.
 */
async function sendSyslog(network: TenantNetworkEnv, drain: DrainTarget, lines: FrameLine[]): Promise<boolean> {
  const url = new URL(drain.url);
  const hostname = drainHost(url);
  if (!hostname) return false;
  let socket: Socket | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    socket = tenantConnect(
      network,
      { hostname: hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port) },
      { secureTransport: url.protocol === "syslog+tls:" ? "on" : "off", allowHalfOpen: false },
      connect,
    );
    const open = socket;
    const send = (async () => {
      await open.opened;
      const writer = open.writable.getWriter();
      await writer.write(encoder.encode(lines.map((l) => logplexFrame(l, drain.token)).join("")));
      await writer.close();
    })();
    send.catch(() => {}); // a send that loses the race below settles unobserved
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out")), SEND_TIMEOUT_MS);
    });
    await Promise.race([send, timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await socket?.close().catch(() => {});
  }
}
