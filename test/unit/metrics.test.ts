import { describe, expect, it } from "vitest";
import { bucketOf, bucketValue, type Histogram, mergeInto, quantile, RELATIVE_ERROR, record, total } from "../../src/metrics/histogram.ts";
import { readingOf } from "../../src/metrics/reading.ts";
import {
  addRequest,
  bucketStart,
  dynoData,
  emptyRequests,
  FOLD_GRACE_MS,
  foldable,
  merge,
  RESOLUTIONS,
  readSeries,
  type RequestData,
  type Row,
  type SeriesData,
} from "../../src/metrics/series.ts";

/** The exact nearest-rank quantile. */
function exact(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

/** A deterministic pseudo-random sequence (xorshift), so failures reproduce. */
function randoms(seed: number) {
  let s = seed;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) % 1_000_000) / 1_000_000;
  };
}

describe("response-time histogram", () => {
  it("reads every quantile within its stated relative error of the exact one", () => {
    const next = randoms(7);
    // Long-tailed, like response times: mostly fast, a few very slow.
    const values = Array.from({ length: 20_000 }, () => Math.round(1 + 30 * next() ** 4 * 1000) / 10);
    const h: Histogram = {};
    for (const v of values) record(h, v);
    expect(total(h)).toBe(values.length);
    for (const q of [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1]) {
      const got = quantile(h, q)!;
      const want = exact(values, q);
      expect(Math.abs(got - want) / want).toBeLessThanOrEqual(RELATIVE_ERROR + 1e-9);
    }
  });

  it("merges exactly: quantiles of merged parts equal those of the whole", () => {
    const next = randoms(11);
    const values = Array.from({ length: 5_000 }, () => Math.floor(next() * 5_000));
    const whole: Histogram = {};
    const parts: Histogram[] = [{}, {}, {}];
    values.forEach((v, i) => {
      record(whole, v);
      record(parts[i % 3]!, v);
    });
    const merged = parts.reduce((into, p) => mergeInto(into, p), {} as Histogram);
    expect(merged).toEqual(whole);
    for (const q of [0.5, 0.95, 0.99]) expect(quantile(merged, q)).toBe(quantile(whole, q));
  });

  it("keeps zero apart and maps each value into a bucket whose value is within the error", () => {
    expect(bucketOf(0)).toBe("z");
    expect(bucketValue("z")).toBe(0);
    for (const v of [1, 2, 3, 17, 250, 999, 30_000]) expect(Math.abs(bucketValue(bucketOf(v)) - v) / v).toBeLessThanOrEqual(RELATIVE_ERROR + 1e-9);
    expect(quantile({}, 0.5)).toBeNull();
  });
});

const minute = 60_000;
const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);

function requestsFor(samples: Array<{ status: number; ms: number }>): RequestData {
  const d = emptyRequests();
  for (const s of samples) addRequest(d, { ...s, bytes: 10 });
  return d;
}

/** Stores rows as the Durable Object does: merged into their bucket, late ones passed on to folded buckets. */
class Store {
  private byKey = new Map<string, Row>();
  get rows(): Row[] {
    return [...this.byKey.values()];
  }
  add(res: number, t: number, series: string, data: SeriesData) {
    const start = bucketStart(t, res);
    const key = `${res}/${start}/${series}`;
    const row = this.byKey.get(key);
    if (row) merge(row.data, structuredClone(data));
    else this.byKey.set(key, { res, t: start, series, data: structuredClone(data), rolled: false });
    const i = RESOLUTIONS.findIndex((r) => r.seconds === res);
    if (row?.rolled && RESOLUTIONS[i + 1]) this.add(RESOLUTIONS[i + 1]!.seconds, start, series, data);
  }
  compact(now: number) {
    for (const [i, { seconds }] of RESOLUTIONS.entries()) {
      const next = RESOLUTIONS[i + 1];
      if (!next) break;
      const { targets, folded } = foldable(this.rows, seconds, now);
      for (const t of targets.values()) this.add(next.seconds, t.t, t.series, t.data);
      for (const r of folded) r.rolled = true;
    }
    for (const { seconds, keepMs } of RESOLUTIONS) {
      const coarsest = seconds === RESOLUTIONS[RESOLUTIONS.length - 1]!.seconds;
      for (const [key, r] of this.byKey) if (r.res === seconds && r.t < now - keepMs && (r.rolled || coarsest)) this.byKey.delete(key);
    }
  }
}

const countOf = (s: Map<string, Map<number, SeriesData>>, series: string) =>
  [...(s.get(series)?.values() ?? [])].reduce((n, d) => n + Object.values((d as RequestData).status).reduce((a, b) => a + b, 0), 0);

describe("resolutions and compaction", () => {
  it("keeps totals exact at every resolution before, during and after folding, late samples included", () => {
    const store = new Store();
    const next = randoms(3);
    let sent = 0;
    const all: number[] = [];
    // Three hours of traffic, a minute at a time, with compactions along the way.
    for (let m = 0; m < 180; m++) {
      const samples = Array.from({ length: 1 + Math.floor(next() * 20) }, () => ({ status: next() < 0.1 ? 500 : 200, ms: Math.floor(next() * 900) }));
      sent += samples.length;
      all.push(...samples.map((s) => s.ms));
      store.add(60, T0 + m * minute, "req:web", requestsFor(samples));
      if (m % 10 === 9) store.compact(T0 + (m + 1) * minute);
    }
    // A late batch for a minute long folded into its ten minutes and its hour.
    store.add(60, T0 + 5 * minute, "req:web", requestsFor([{ status: 404, ms: 12 }]));
    sent += 1;
    all.push(12);
    const now = T0 + 181 * minute;
    for (const res of [60, 600, 3600]) expect(countOf(readSeries(store.rows, res, T0, now), "req:web")).toBe(sent);
    store.compact(now + 3_600_000);
    for (const res of [60, 600, 3600]) expect(countOf(readSeries(store.rows, res, T0, now), "req:web")).toBe(sent);
    // Totals over the range read from the coarsest level hold the same percentiles as all the samples.
    const reading = readingOf(store.rows, [], { rangeMs: 4 * 3_600_000, resolution: 3600 }, T0 + 4 * 3_600_000);
    expect(reading.totals.web!.requests).toBe(sent);
    expect(reading.totals.web!.status["4xx"]).toBe(1);
    const p99 = exact(all, 0.99);
    expect(Math.abs(reading.totals.web!.p99_ms! - p99) / p99).toBeLessThanOrEqual(RELATIVE_ERROR + 1e-9);
  });

  it("folds a bucket only once its coarser bucket ended more than the grace ago", () => {
    const rows: Row[] = [{ res: 60, t: T0, series: "req:web", data: requestsFor([{ status: 200, ms: 5 }]), rolled: false }];
    expect(foldable(rows, 60, T0 + 10 * minute + FOLD_GRACE_MS - 1).folded).toHaveLength(0);
    expect(foldable(rows, 60, T0 + 10 * minute + FOLD_GRACE_MS).folded).toHaveLength(1);
  });

  it("drops each resolution past its retention, so an app's rows are bounded however long it runs", () => {
    const store = new Store();
    const series = ["dyno:web.1", "dyno:web.2"];
    const days = 35;
    for (let m = 0; m < days * 24 * 60; m += 1) {
      for (const s of series)
        store.add(60, T0 + m * minute, s, dynoData({ type: "web", rssMb: 100, swapMb: 0, totalMb: 100, quotaMb: 512, load1m: 0.5, restarts: 0 }));
      if (m % 60 === 59) store.compact(T0 + (m + 1) * minute);
    }
    const perSeries = RESOLUTIONS.reduce((n, r) => n + r.keepMs / (r.seconds * 1000), 0);
    // Each series: a day of minutes, a week of ten minutes, a month of hours (plus the buckets still filling).
    expect(store.rows.length).toBeLessThanOrEqual(series.length * (perSeries + 72));
    expect(store.rows.length).toBeGreaterThan(series.length * perSeries * 0.9);
  }, 60_000);

  it("answers means and maxima of dyno samples per bucket", () => {
    const rows: Row[] = [];
    const a = dynoData({ type: "web", rssMb: 100, swapMb: 0, totalMb: 100, quotaMb: 512, load1m: 1, restarts: 0 });
    const b = dynoData({ type: "web", rssMb: 300, swapMb: 4, totalMb: 304, quotaMb: 512, load1m: 3, restarts: 1 });
    rows.push({ res: 60, t: T0, series: "dyno:web.1", data: merge(a, b), rolled: false });
    const reading = readingOf(rows, [], { rangeMs: 2 * minute, resolution: 60 }, T0 + 2 * minute);
    const point = reading.dynos["web.1"]!.points.find((p) => p.t === new Date(T0).toISOString())!;
    expect(point).toMatchObject({ memory_rss_mb: 200, memory_rss_max_mb: 300, memory_swap_mb: 2, memory_quota_mb: 512, load_avg_1m: 2, restarts: 1 });
    expect(reading.process_types).toEqual(["web"]);
  });
});
