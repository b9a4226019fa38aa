/**
 * A mergeable histogram of response times with a stated relative error: values fall into
 * logarithmic buckets (the mapping DDSketch uses), so a percentile read from merged buckets
 * is within RELATIVE_ERROR of the exact one however many minutes or Worker instances were
 * merged, and a bucket's count is exact. Sparse: only buckets that were hit are kept, as a
 * JSON object `{bucket: count}` a Durable Object stores per minute. Written here rather than
 * taken from a sketch library because the stored form must be plain JSON, merged by addition
 * inside SQLite rows, with no codec of its own.
 */

/** A percentile read from the histogram is within this fraction of the exact value. */
export const RELATIVE_ERROR = 0.02;
const GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR);
const LOG_GAMMA = Math.log(GAMMA);
/** Bucket of values that are 0 (below a millisecond's clock resolution). */
const ZERO = "z";

/** Bucket → count. */
export type Histogram = Record<string, number>;

/** The bucket a value (milliseconds, ≥ 0) falls into. */
export function bucketOf(ms: number): string {
  if (!(ms > 0)) return ZERO;
  return String(Math.ceil(Math.log(ms) / LOG_GAMMA));
}

/** The value that stands for a bucket: within RELATIVE_ERROR of every value in it. */
export function bucketValue(bucket: string): number {
  if (bucket === ZERO) return 0;
  return (2 * GAMMA ** Number(bucket)) / (GAMMA + 1);
}

/** Adds one value. */
export function record(h: Histogram, ms: number, count = 1): void {
  const b = bucketOf(ms);
  h[b] = (h[b] ?? 0) + count;
}

/** Adds `from` into `into` (counts add: merging is exact). */
export function mergeInto(into: Histogram, from: Histogram): Histogram {
  for (const [b, n] of Object.entries(from)) into[b] = (into[b] ?? 0) + n;
  return into;
}

export function total(h: Histogram): number {
  let n = 0;
  for (const c of Object.values(h)) n += c;
  return n;
}

/**
 * The q-quantile (0 < q ≤ 1) by nearest rank, as the value of the bucket holding the
 * ⌈q·n⌉-th smallest value; null for an empty histogram.
 */
export function quantile(h: Histogram, q: number): number | null {
  const n = total(h);
  if (!n) return null;
  const rank = Math.max(1, Math.ceil(q * n));
  const buckets = Object.keys(h).sort((a, b) => bucketValue(a) - bucketValue(b));
  let seen = 0;
  for (const b of buckets) {
    seen += h[b]!;
    if (seen >= rank) return bucketValue(b);
  }
  return bucketValue(buckets[buckets.length - 1]!);
}
