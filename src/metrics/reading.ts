import {
  bucketTimes,
  type DynoData,
  type DynoPoint,
  dynoPoint,
  merge,
  RANGES,
  type RangeName,
  readSeries,
  type RequestData,
  type RequestPoint,
  requestPoint,
  type Row,
  type SeriesData,
} from "./series.ts";

/** Something that happened to an app, drawn as a marker on its charts. */
export interface AppEvent {
  /** When (ms since the epoch). */
  t: number;
  kind: AppEventKind;
  /** What the app's log says of it, or a short description. */
  message: string;
  /** The release it made, for deploys, rollbacks and config changes. */
  version?: number;
  /** The dyno it concerns, for crashes, errors and restarts of one dyno. */
  dyno?: string;
  /** Heroku's error code (R10, R14, R15, H10). */
  code?: string;
}

export const APP_EVENT_KINDS = ["deploy", "rollback", "config", "release", "scale", "restart", "crash", "error", "sleep", "wake", "ping"] as const;
export type AppEventKind = (typeof APP_EVENT_KINDS)[number];

/** A series' data for one minute, as the router or the agent's report hands it over. */
export interface MetricsPoint {
  t: number;
  series: string;
  data: SeriesData;
}

export interface MetricsBatch {
  points?: MetricsPoint[];
  events?: AppEvent[];
}

export interface MetricsQuery {
  rangeMs: number;
  resolution: number;
  /** The reading's end; now when absent. */
  now?: number;
}

/** The series of one range, as `GET /apps/{app}/metrics` returns them (less the app and the eco pool). */
export interface MetricsReading {
  from: string;
  to: string;
  resolution_s: number;
  /** Process types with data in the range. */
  process_types: string[];
  /** Router measurements per process type, a point per bucket (empty buckets included). */
  requests: Record<string, RequestPoint[]>;
  /** The agent's measurements per dyno, a point per bucket. */
  dynos: Record<string, { type: string; points: DynoPoint[] }>;
  /** Totals over the range per process type (exact counts; percentiles from the merged histogram). */
  totals: Record<string, RequestPoint>;
  events: Array<Omit<AppEvent, "t"> & { t: string }>;
}

/** The query for a named range. */
export function rangeQuery(name: RangeName, now?: number): MetricsQuery {
  const r = RANGES[name];
  return { rangeMs: r.ms, resolution: r.resolution, now };
}

/** Turns stored rows and events into a reading. Pure. */
export function readingOf(rows: Row[], events: AppEvent[], query: MetricsQuery, now: number): MetricsReading {
  const to = now;
  const from = now - query.rangeMs;
  const times = bucketTimes(from, to, query.resolution);
  const start = times[0] ?? from;
  const series = readSeries(rows, query.resolution, start, to);
  const requests: Record<string, RequestPoint[]> = {};
  const totals: Record<string, RequestPoint> = {};
  const dynos: Record<string, { type: string; points: DynoPoint[] }> = {};
  const types = new Set<string>();
  for (const [name, points] of series) {
    const [kind, id] = [name.slice(0, name.indexOf(":")), name.slice(name.indexOf(":") + 1)];
    if (kind === "req") {
      types.add(id);
      requests[id] = times.map((t) => requestPoint(t, points.get(t) as RequestData | undefined));
      let sum: RequestData | undefined;
      for (const d of points.values()) sum = sum ? merge(sum, structuredClone(d as RequestData)) : structuredClone(d as RequestData);
      totals[id] = { ...requestPoint(start, sum), t: new Date(start).toISOString() };
    } else if (kind === "dyno") {
      const type = [...points.values()].map((d) => (d as DynoData).type).find(Boolean) ?? id.split(".")[0]!;
      types.add(type);
      dynos[id] = { type, points: times.map((t) => dynoPoint(t, points.get(t) as DynoData | undefined)) };
    }
  }
  return {
    from: new Date(start).toISOString(),
    to: new Date(to).toISOString(),
    resolution_s: query.resolution,
    process_types: [...types].sort(),
    requests,
    dynos: Object.fromEntries(Object.entries(dynos).sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))),
    totals,
    events: events.filter((e) => e.t >= start && e.t <= to).map((e) => ({ ...e, t: new Date(e.t).toISOString() })),
  };
}
