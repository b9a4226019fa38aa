import type { Bindings } from "../../env.ts";
import type { AppEvent, MetricsBatch, MetricsPoint, MetricsReading } from "../../metrics/reading.ts";
import { rangeQuery } from "../../metrics/reading.ts";
import { addRequest, bucketStart, emptyRequests, type RangeName, type RequestData, type RequestSample } from "../../metrics/series.ts";
import type { ServiceContext } from "../context.ts";

/**
 * What the platform measures of apps, on its way to each app's AppMetrics Durable Object:
 * the router's requests (batched per Worker instance, never written per request), the
 * agents' dyno samples, and the events drawn on the charts.
 */

type MetricsEnv = Pick<Bindings, "APP_METRICS" | "COLLECT_METRICS">;

/** The app's metrics object (null where it is not bound, e.g. routes mounted in Node). */
export function appMetrics(env: Pick<Bindings, "APP_METRICS">, appId: string) {
  return env.APP_METRICS ? env.APP_METRICS.get(env.APP_METRICS.idFromName(appId)) : null;
}

/** Whether the router collects request metrics ("false" turns it off, to measure what it costs). */
export const collecting = (env: Pick<Bindings, "COLLECT_METRICS">) => env.COLLECT_METRICS !== "false";

/** How long a Worker instance gathers the router's measurements before it sends them. */
export const REQUEST_FLUSH_MS = 5_000;
/** Apps a Worker instance gathers measurements for at once; beyond that a flush is started early. */
const MAX_PENDING_APPS = 5_000;

/**
 * The router's measurements of the requests it routed, per app and minute, gathered in
 * memory and sent every REQUEST_FLUSH_MS to each app's metrics object, one call per app.
 * One per Worker instance.
 */
export class RequestMeasurements {
  readonly #pending = new Map<string, Map<number, RequestData>>();
  #flushing = false;

  /** Counts one routed request (status, time to headers, bytes) for the app's web process: a few additions in memory. */
  record(env: MetricsEnv, after: (work: Promise<unknown>) => void, appId: string, sample: RequestSample): void {
    if (!env.APP_METRICS || !collecting(env)) return;
    const minute = bucketStart(Date.now(), 60);
    let byMinute = this.#pending.get(appId);
    if (!byMinute) {
      if (this.#pending.size >= MAX_PENDING_APPS) return; // the flush under way empties it
      byMinute = new Map();
      this.#pending.set(appId, byMinute);
    }
    let data = byMinute.get(minute);
    if (!data) byMinute.set(minute, (data = emptyRequests()));
    addRequest(data, sample);
    if (this.#flushing) return;
    this.#flushing = true;
    after(new Promise((resolve) => setTimeout(resolve, REQUEST_FLUSH_MS)).then(() => this.#flush(env)));
  }

  async #flush(env: MetricsEnv): Promise<void> {
    this.#flushing = false;
    const taken = [...this.#pending];
    this.#pending.clear();
    await Promise.all(
      taken.map(([id, minutes]) => {
        const points: MetricsPoint[] = [...minutes].map(([t, data]) => ({ t, series: "req:web", data }));
        const crashed = [...minutes].find(([, d]) => d.errors.H10);
        const events: AppEvent[] = crashed ? [{ t: crashed[0], kind: "error", code: "H10", message: "Error H10 (App crashed)" }] : [];
        return appMetrics(env, id)!
          .ingest({ points, events })
          .catch((err: unknown) => console.error(JSON.stringify({ metrics_lost: { app_id: id, requests: points.length }, error: String(err) })));
      }),
    );
  }
}

/** Records events of an app for its charts, after the answer. */
export function recordEvents(ctx: Pick<ServiceContext, "env" | "after">, appId: string, events: TimedEvent[]): void {
  if (events.length && ctx.env.APP_METRICS) ctx.after(recordEventsNow(ctx.env, appId, events));
}

/** An event to record; without `t`, it happened now. */
type TimedEvent = Omit<AppEvent, "t"> & { t?: number };

/** Records events of an app for its charts now (where there is no request to outlive); a failure is logged, not thrown. */
async function recordEventsNow(env: Pick<Bindings, "APP_METRICS">, appId: string, events: TimedEvent[]): Promise<void> {
  const now = Date.now();
  await appMetrics(env, appId)
    ?.ingest({ events: events.map((e) => ({ ...e, t: e.t ?? now })) })
    .catch((err: unknown) => console.error(JSON.stringify({ metrics_events_lost: appId, error: String(err) })));
}

/** Sends a batch (the agent's samples) to the app's metrics object. */
export async function ingestMetrics(env: Pick<Bindings, "APP_METRICS">, appId: string, batch: MetricsBatch): Promise<void> {
  await appMetrics(env, appId)?.ingest(batch);
}

/** The app's series over a named range. */
export async function readMetrics(env: Pick<Bindings, "APP_METRICS">, appId: string, range: RangeName): Promise<MetricsReading> {
  const stub = appMetrics(env, appId);
  if (!stub) throw new Error("The APP_METRICS binding is missing.");
  return stub.read(rangeQuery(range));
}
