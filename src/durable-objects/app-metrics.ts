import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../env.ts";
import type { AppEvent, MetricsBatch, MetricsQuery, MetricsReading } from "../metrics/reading.ts";
import { readingOf } from "../metrics/reading.ts";
import { AppliedKeys } from "./applied.ts";
import { coarserThan, foldable, MAX_EVENTS, MAX_SERIES, merge, RESOLUTIONS, type Row, type SeriesData } from "../metrics/series.ts";

/** How often minutes are folded into coarser buckets while new ones arrive. */
const FOLD_EVERY_MS = 10 * 60_000;

const FINEST = RESOLUTIONS[0].seconds;
const LONGEST_MS = RESOLUTIONS[RESOLUTIONS.length - 1]!.keepMs;

/**
 * One per app: its metrics in SQLite, one row per resolution, bucket and series (see
 * src/metrics/series.ts). Samples land in minutes; an alarm folds finished minutes into
 * ten-minute buckets and those into hours, and drops what is past its retention, so an app's
 * storage is bounded (MAX_SERIES × the rows of 30 days, and MAX_EVENTS events).
 */
export class AppMetrics extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;
  private readonly applied: AppliedKeys;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS points (
      res INTEGER NOT NULL, t INTEGER NOT NULL, series TEXT NOT NULL, data TEXT NOT NULL, rolled INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (res, t, series))`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS points_unrolled ON points (res, rolled, t)");
    this.sql.exec(`CREATE TABLE IF NOT EXISTS events (
      id INTEGER PRIMARY KEY AUTOINCREMENT, t INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL)`);
    this.sql.exec("CREATE INDEX IF NOT EXISTS events_t ON events (t)");
    this.applied = new AppliedKeys(this.sql);
  }

  /** Ingests a batch as `ingest` does, once per `key`. */
  async ingestOnce(key: string, batch: MetricsBatch): Promise<void> {
    if (this.applied.first(key)) await this.ingest(batch);
  }

  /** Adds samples (merged into their minutes) and events. */
  async ingest(batch: MetricsBatch): Promise<void> {
    const now = Date.now();
    const oldest = now - RESOLUTIONS[0].keepMs;
    // The series kept so far, read only when samples come (most batches of events carry none).
    const known = batch.points?.length
      ? new Set(
          this.sql
            .exec<{ series: string }>("SELECT DISTINCT series FROM points")
            .toArray()
            .map((r) => r.series),
        )
      : new Set<string>();
    for (const p of batch.points ?? []) {
      if (p.t < oldest || p.t > now + 60_000) continue;
      if (!known.has(p.series)) {
        if (known.size >= MAX_SERIES) continue;
        known.add(p.series);
      }
      this.addTo(FINEST, p.t, p.series, p.data);
    }
    for (const e of (batch.events ?? []).slice(0, 100)) {
      if (e.t < now - LONGEST_MS || e.t > now + 60_000) continue;
      const { t, kind, ...rest } = e;
      this.sql.exec("INSERT INTO events (t, kind, body) VALUES (?, ?, ?)", t, kind, JSON.stringify(rest));
    }
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + FOLD_EVERY_MS);
  }

  /** The app's series and events for a range (see readingOf). */
  async read(query: MetricsQuery): Promise<MetricsReading> {
    const now = query.now ?? Date.now();
    const from = now - query.rangeMs;
    const rows = this.sql
      .exec<{ res: number; t: number; series: string; data: string; rolled: number }>(
        // The resolution asked for, and the finer rows not folded into it yet.
        "SELECT res, t, series, data, rolled FROM points WHERE (res = ? OR (res < ? AND rolled = 0)) AND t >= ? AND t < ?",
        query.resolution,
        query.resolution,
        from - 3_600_000,
        now + 60_000,
      )
      .toArray()
      .map((r): Row => ({ res: r.res, t: r.t, series: r.series, data: JSON.parse(r.data) as SeriesData, rolled: r.rolled === 1 }));
    const events = this.sql
      .exec<{ t: number; kind: string; body: string }>(
        "SELECT t, kind, body FROM events WHERE t >= ? AND t <= ? ORDER BY t, id LIMIT ?",
        from,
        now + 60_000,
        MAX_EVENTS,
      )
      .toArray()
      .map((r) => ({ t: r.t, kind: r.kind, ...JSON.parse(r.body) }) as AppEvent);
    return readingOf(rows, events, query, now);
  }

  /** How many rows and events the app keeps (its storage bound's measure). */
  async size(): Promise<{ points: number; events: number; series: number }> {
    const [p] = this.sql.exec<{ n: number; s: number }>("SELECT count(*) AS n, count(DISTINCT series) AS s FROM points").toArray();
    const [e] = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM events").toArray();
    return { points: p!.n, events: e!.n, series: p!.s };
  }

  /** Folds finished buckets into coarser ones and drops what is past its retention. */
  override async alarm(): Promise<void> {
    this.compact(Date.now());
    const [unrolled] = this.sql
      .exec<{ n: number }>("SELECT count(*) AS n FROM points WHERE rolled = 0 AND res < ?", RESOLUTIONS[RESOLUTIONS.length - 1]!.seconds)
      .toArray();
    const [any] = this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM points").toArray();
    if (unrolled!.n > 0 || any!.n > 0) await this.ctx.storage.setAlarm(Date.now() + (unrolled!.n > 0 ? FOLD_EVERY_MS : 6 * 3_600_000));
  }

  /** One compaction at `now`. */
  compact(now: number): void {
    for (const { seconds } of RESOLUTIONS) {
      if (coarserThan(seconds) === null) break;
      const rows = this.sql
        .exec<{ t: number; series: string; data: string }>("SELECT t, series, data FROM points WHERE res = ? AND rolled = 0", seconds)
        .toArray()
        .map((r): Row => ({ res: seconds, t: r.t, series: r.series, data: JSON.parse(r.data) as SeriesData, rolled: false }));
      const { targets, folded } = foldable(rows, seconds, now);
      for (const target of targets.values()) this.addTo(coarserThan(seconds)!, target.t, target.series, target.data);
      for (const row of folded) this.sql.exec("UPDATE points SET rolled = 1 WHERE res = ? AND t = ? AND series = ?", seconds, row.t, row.series);
    }
    for (const { seconds, keepMs } of RESOLUTIONS) {
      // Unfolded rows past retention are folded first above; at the coarsest there is nothing to fold into.
      this.sql.exec(
        "DELETE FROM points WHERE res = ? AND t < ? AND (rolled = 1 OR ? = ?)",
        seconds,
        now - keepMs,
        seconds,
        RESOLUTIONS[RESOLUTIONS.length - 1]!.seconds,
      );
    }
    this.sql.exec("DELETE FROM events WHERE t < ?", now - LONGEST_MS);
    this.sql.exec("DELETE FROM events WHERE id NOT IN (SELECT id FROM events ORDER BY t DESC, id DESC LIMIT ?)", MAX_EVENTS);
  }

  /**
   * Merges data into a bucket. A bucket already folded into the coarser one passes the
   * data on to it as well (a late sample), so each resolution keeps exact totals.
   */
  private addTo(res: number, t: number, series: string, data: SeriesData): void {
    const start = Math.floor(t / (res * 1000)) * res * 1000;
    const [row] = this.sql
      .exec<{ data: string; rolled: number }>("SELECT data, rolled FROM points WHERE res = ? AND t = ? AND series = ?", res, start, series)
      .toArray();
    const merged = row ? merge(JSON.parse(row.data) as SeriesData, structuredClone(data)) : data;
    this.sql.exec(
      "INSERT OR REPLACE INTO points (res, t, series, data, rolled) VALUES (?, ?, ?, ?, ?)",
      res,
      start,
      series,
      JSON.stringify(merged),
      row?.rolled ?? 0,
    );
    const coarser = coarserThan(res);
    if (row?.rolled === 1 && coarser !== null) this.addTo(coarser, start, series, data);
  }
}
