import autocannon from "autocannon";

export interface LoadResult {
  label: string;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}

export interface LoadSpec {
  label: string;
  url: string;
  method?: "GET" | "PATCH" | "POST";
  headers?: Record<string, string>;
  /** A fresh body for every request (so writes really write). */
  body?: () => string;
  connections: number;
  seconds: number;
}

/** Drives one route with autocannon and returns throughput and latency percentiles (ms). */
export async function load(spec: LoadSpec): Promise<LoadResult> {
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.seconds,
    servername: "localhost",
    headers: spec.headers,
    requests: [
      {
        method: spec.method ?? "GET",
        setupRequest: (req) => (spec.body ? { ...req, body: spec.body() } : req),
      },
    ],
  });
  return {
    label: spec.label,
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

/** A fixed-width table of load results. */
export function formatResults(results: LoadResult[]): string {
  const rows = [["route", "req/s", "p50 ms", "p99 ms", "requests", "errors", "non-2xx"]];
  for (const r of results) {
    rows.push([r.label, r.rps.toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), String(r.requests), String(r.errors), String(r.non2xx)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ")).join("\n");
}
