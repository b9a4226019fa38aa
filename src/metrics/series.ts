import { type Histogram, mergeInto, quantile, record } from "./histogram.ts";

/**
 * An app's metrics, as its Durable Object keeps them: one row per resolution, bucket start
 * and series, whose data merges by addition (counts, sums, histograms) or by maximum, so
 * minutes fold into ten-minute and hourly buckets with totals exact. Pure: the Durable
 * Object only stores and reads rows.
 *
 * Series: `req:<process type>` (what the router saw) and `dyno:<dyno name>` (what the agent
 * measured).
 */

/** Resolutions in seconds, finest first, with how long each is kept. */
export const RESOLUTIONS = [
  { seconds: 60, keepMs: 24 * 3_600_000 },
  { seconds: 600, keepMs: 7 * 24 * 3_600_000 },
  { seconds: 3_600, keepMs: 30 * 24 * 3_600_000 },
] as const;
export type Resolution = (typeof RESOLUTIONS)[number]["seconds"];

/** Series an app may have (process types' requests and dyno names); samples of more are dropped. */
export const MAX_SERIES = 32;
/** Events kept per app (the newest), within the longest retention. */
export const MAX_EVENTS = 2_000;

/** A coarser bucket is folded once it ended this long ago: samples of its last minute may still be on their way. */
export const FOLD_GRACE_MS = 2 * 60_000;

/** Ranges a reader asks for, and the resolution each is drawn at. */
export const RANGES = {
  "1h": { ms: 3_600_000, resolution: 60 },
  "24h": { ms: 24 * 3_600_000, resolution: 600 },
  "7d": { ms: 7 * 24 * 3_600_000, resolution: 3_600 },
  "30d": { ms: 30 * 24 * 3_600_000, resolution: 3_600 },
} as const;
export type RangeName = keyof typeof RANGES;

/** What the router saw in one bucket for one process type. */
export interface RequestData {
  kind: "req";
  /** Responses by status class: "2xx", "3xx", "4xx", "5xx". */
  status: Record<string, number>;
  /** Router errors by H-code (their responses are counted in `status` too). */
  errors: Record<string, number>;
  /** Response times (ms, until the response's headers). */
  hist: Histogram;
  maxMs: number;
  bytes: number;
}

/** What the agent measured of one dyno in one bucket (sums over `samples` give means). */
export interface DynoData {
  kind: "dyno";
  type: string;
  samples: number;
  rssSum: number;
  rssMax: number;
  swapSum: number;
  swapMax: number;
  totalSum: number;
  totalMax: number;
  /** The dyno size's memory (the latest seen). */
  quotaMb: number;
  loadSum: number;
  loadMax: number;
  restarts: number;
}

export type SeriesData = RequestData | DynoData;

export const emptyRequests = (): RequestData => ({ kind: "req", status: {}, errors: {}, hist: {}, maxMs: 0, bytes: 0 });

/** One routed request, as the router measured it. */
export interface RequestSample {
  status: number;
  ms: number;
  bytes: number;
  /** The router's error code when the router answered itself (H10, H12, …). */
  code?: string;
}

/** Adds one request to a bucket's data. */
export function addRequest(d: RequestData, s: RequestSample): void {
  const cls = `${Math.min(5, Math.max(1, Math.floor(s.status / 100)))}xx`;
  d.status[cls] = (d.status[cls] ?? 0) + 1;
  if (s.code) d.errors[s.code] = (d.errors[s.code] ?? 0) + 1;
  record(d.hist, s.ms);
  d.maxMs = Math.max(d.maxMs, s.ms);
  d.bytes += Math.max(0, s.bytes);
}

/** One dyno's measurement, as the agent reports it every 20 s. */
export interface DynoSample {
  type: string;
  rssMb: number;
  swapMb: number;
  totalMb: number;
  quotaMb: number;
  load1m: number;
  /** Starts of the dyno's process seen since the previous report (restarts and crash restarts). */
  restarts: number;
}

export function dynoData(s: DynoSample): DynoData {
  return {
    kind: "dyno",
    type: s.type,
    samples: 1,
    rssSum: s.rssMb,
    rssMax: s.rssMb,
    swapSum: s.swapMb,
    swapMax: s.swapMb,
    totalSum: s.totalMb,
    totalMax: s.totalMb,
    quotaMb: s.quotaMb,
    loadSum: s.load1m,
    loadMax: s.load1m,
    restarts: s.restarts,
  };
}

const add = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
};

/** Merges `from` into `into` (same kind): what folding and late samples do. */
export function merge<T extends SeriesData>(into: T, from: T): T {
  if (into.kind === "req" && from.kind === "req") {
    add(into.status, from.status);
    add(into.errors, from.errors);
    mergeInto(into.hist, from.hist);
    into.maxMs = Math.max(into.maxMs, from.maxMs);
    into.bytes += from.bytes;
  } else if (into.kind === "dyno" && from.kind === "dyno") {
    into.type = from.type;
    into.samples += from.samples;
    into.rssSum += from.rssSum;
    into.rssMax = Math.max(into.rssMax, from.rssMax);
    into.swapSum += from.swapSum;
    into.swapMax = Math.max(into.swapMax, from.swapMax);
    into.totalSum += from.totalSum;
    into.totalMax = Math.max(into.totalMax, from.totalMax);
    into.quotaMb = from.quotaMb || into.quotaMb;
    into.loadSum += from.loadSum;
    into.loadMax = Math.max(into.loadMax, from.loadMax);
    into.restarts += from.restarts;
  }
  return into;
}

/** A stored row. */
export interface Row {
  res: number;
  t: number;
  series: string;
  data: SeriesData;
  /** Whether it has been folded into the next coarser resolution. */
  rolled: boolean;
}

/** The start (ms) of the bucket of `resolution` seconds holding `ms`. */
export const bucketStart = (ms: number, resolution: number) => Math.floor(ms / (resolution * 1000)) * resolution * 1000;

/**
 * The rows of resolution `res` ready to fold at `now`: not folded yet, and their coarser
 * bucket ended over FOLD_GRACE_MS ago. Pure selection; returns them grouped by their
 * coarser bucket and series, merged.
 */
export function foldable(rows: Row[], res: number, now: number): { targets: Map<string, { t: number; series: string; data: SeriesData }>; folded: Row[] } {
  const next = coarserThan(res);
  const targets = new Map<string, { t: number; series: string; data: SeriesData }>();
  const folded: Row[] = [];
  if (next === null) return { targets, folded };
  for (const row of rows) {
    if (row.res !== res || row.rolled) continue;
    const t = bucketStart(row.t, next);
    if (t + next * 1000 + FOLD_GRACE_MS > now) continue;
    const key = `${t}\u0000${row.series}`;
    const target = targets.get(key);
    if (target) merge(target.data, structuredClone(row.data));
    else targets.set(key, { t, series: row.series, data: structuredClone(row.data) });
    folded.push(row);
  }
  return { targets, folded };
}

/** The resolution a level folds into, or null for the coarsest. */
export const coarserThan = (res: number): number | null => RESOLUTIONS[RESOLUTIONS.findIndex((r) => r.seconds === res) + 1]?.seconds ?? null;

/**
 * The series at `resolution` from `from` to `to` (ms): rows of that resolution plus the rows
 * of finer resolutions not folded yet (folded ones are inside the coarser rows already), so
 * every resolution has the same totals.
 */
export function readSeries(rows: Row[], resolution: number, from: number, to: number): Map<string, Map<number, SeriesData>> {
  const out = new Map<string, Map<number, SeriesData>>();
  for (const row of rows) {
    if (row.res > resolution || (row.res < resolution && row.rolled)) continue;
    const t = bucketStart(row.t, resolution);
    if (t < from || t >= to) continue;
    const points = out.get(row.series) ?? new Map<number, SeriesData>();
    const kept = points.get(t);
    points.set(t, kept ? merge(kept, structuredClone(row.data)) : structuredClone(row.data));
    out.set(row.series, points);
  }
  return out;
}

/** A point of the request series as readers get it. */
export interface RequestPoint {
  t: string;
  requests: number;
  status: { "2xx": number; "3xx": number; "4xx": number; "5xx": number };
  errors: Record<string, number>;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  bytes: number;
}

export function requestPoint(t: number, d: RequestData | undefined): RequestPoint {
  const status = { "2xx": d?.status["2xx"] ?? 0, "3xx": d?.status["3xx"] ?? 0, "4xx": d?.status["4xx"] ?? 0, "5xx": d?.status["5xx"] ?? 0 };
  const requests = Object.values(d?.status ?? {}).reduce((a, b) => a + b, 0);
  const q = (x: number) => (d ? round(quantile(d.hist, x)) : null);
  return {
    t: new Date(t).toISOString(),
    requests,
    status,
    errors: { ...(d?.errors ?? {}) },
    p50_ms: q(0.5),
    p95_ms: q(0.95),
    p99_ms: q(0.99),
    max_ms: d && requests ? d.maxMs : null,
    bytes: d?.bytes ?? 0,
  };
}

/** A point of a dyno's series as readers get it (means over the bucket's samples). */
export interface DynoPoint {
  t: string;
  memory_rss_mb: number | null;
  memory_rss_max_mb: number | null;
  memory_swap_mb: number | null;
  memory_total_mb: number | null;
  memory_quota_mb: number | null;
  load_avg_1m: number | null;
  load_max_1m: number | null;
  restarts: number;
}

export function dynoPoint(t: number, d: DynoData | undefined): DynoPoint {
  const mean = (sum: number) => (d?.samples ? round(sum / d.samples) : null);
  return {
    t: new Date(t).toISOString(),
    memory_rss_mb: mean(d?.rssSum ?? 0),
    memory_rss_max_mb: d?.samples ? round(d.rssMax) : null,
    memory_swap_mb: mean(d?.swapSum ?? 0),
    memory_total_mb: mean(d?.totalSum ?? 0),
    memory_quota_mb: d?.samples ? d.quotaMb : null,
    load_avg_1m: mean(d?.loadSum ?? 0),
    load_max_1m: d?.samples ? round(d.loadMax) : null,
    restarts: d?.restarts ?? 0,
  };
}

const round = (x: number | null) => (x === null ? null : Math.round(x * 100) / 100);

/** Bucket starts from `from` (aligned) up to `to`, for a chart's x axis. */
export function bucketTimes(from: number, to: number, resolution: number): number[] {
  const times: number[] = [];
  for (let t = bucketStart(from, resolution); t < to; t += resolution * 1000) times.push(t);
  return times;
}
