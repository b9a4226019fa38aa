import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MetricsBatch, MetricsReading } from "../../src/metrics/reading.ts";
import { addRequest, dynoData, emptyRequests, MAX_EVENTS, MAX_SERIES } from "../../src/metrics/series.ts";

// The AppMetrics Durable Object itself, in workerd through Miniflare, with SQLite storage:
// its SQL (merging, folding, passing late samples on, pruning, the bounds) against the
// same totals the pure functions promise.

interface MetricsStub {
  ingest(batch: MetricsBatch): Promise<void>;
  read(query: { rangeMs: number; resolution: number; now?: number }): Promise<MetricsReading>;
  compact(now: number): Promise<void>;
  size(): Promise<{ points: number; events: number; series: number }>;
}

let mf: Miniflare;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-metrics-do-"));
  // The class as the Worker bundles it, behind a Worker that only exports it.
  const entry = path.join(dir, "entry.ts");
  writeFileSync(
    entry,
    `export { AppMetrics } from ${JSON.stringify(path.resolve("src/durable-objects/app-metrics.ts"))};\nexport default { fetch: () => new Response("ok") };\n`,
  );
  const out = path.join(dir, "worker.js");
  await build({ entryPoints: [entry], bundle: true, format: "esm", platform: "neutral", outfile: out, external: ["cloudflare:workers"], logLevel: "silent" });
  mf = new Miniflare({
    modules: true,
    scriptPath: out,
    modulesRoot: dir,
    compatibilityDate: "2026-04-01",
    durableObjects: { APP_METRICS: { className: "AppMetrics", useSQLite: true } },
  });
  await mf.ready;
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function app(name: string): Promise<MetricsStub> {
  const ns = await mf.getDurableObjectNamespace("APP_METRICS");
  return ns.get(ns.idFromName(name)) as unknown as MetricsStub;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function minuteOf(statuses: number[], ms: number) {
  const d = emptyRequests();
  for (const status of statuses) addRequest(d, { status, ms, bytes: 100 });
  return d;
}

const total = (r: MetricsReading) => r.totals.web?.requests ?? 0;

describe("the AppMetrics Durable Object", () => {
  it("keeps exact totals at every resolution across folding, with a late sample for a folded minute", async () => {
    const stub = await app("fold");
    const now = Date.now();
    const start = now - 3 * HOUR;
    let sent = 0;
    for (let m = 0; m < 170; m++) {
      const statuses = Array.from({ length: 1 + (m % 7) }, (_, i) => (i === 0 && m % 5 === 0 ? 500 : 200));
      sent += statuses.length;
      await stub.ingest({ points: [{ t: start + m * MINUTE, series: "req:web", data: minuteOf(statuses, 10 + m) }] });
    }
    const read = (rangeMs: number, resolution: number) => stub.read({ rangeMs, resolution, now });
    const before = [await read(4 * HOUR, 60), await read(4 * HOUR, 600), await read(4 * HOUR, 3600)];
    expect(before.map(total)).toEqual([sent, sent, sent]);
    await stub.compact(now);
    const folded = await stub.size();
    // Three hours of minutes folded: rows at 10 minutes and at hours now exist beside them.
    expect(folded.points).toBeGreaterThan(170);
    // A late batch for a minute two and a half hours ago, long folded.
    await stub.ingest({ points: [{ t: start + 5 * MINUTE, series: "req:web", data: minuteOf([404, 404], 5) }] });
    sent += 2;
    const after = [await read(4 * HOUR, 60), await read(4 * HOUR, 600), await read(4 * HOUR, 3600)];
    expect(after.map(total)).toEqual([sent, sent, sent]);
    for (const r of after) expect(r.totals.web!.status["4xx"]).toBe(2);
    expect(after[2]!.totals.web!.p99_ms).toBe(after[0]!.totals.web!.p99_ms);
    // Folding again changes nothing.
    await stub.compact(now + 5 * MINUTE);
    expect((await Promise.all([read(4 * HOUR, 60), read(4 * HOUR, 600), read(4 * HOUR, 3600)])).map(total)).toEqual([sent, sent, sent]);
  });

  it("drops each resolution past its retention", async () => {
    const stub = await app("retention");
    const now = Date.now();
    // Samples accepted only within the finest resolution's day: older ones are refused.
    await stub.ingest({ points: [{ t: now - 25 * HOUR, series: "req:web", data: minuteOf([200], 1) }] });
    expect((await stub.size()).points).toBe(0);
    await stub.ingest({ points: [{ t: now - 23 * HOUR, series: "req:web", data: minuteOf([200], 1) }] });
    await stub.compact(now);
    expect((await stub.read({ rangeMs: 7 * 24 * HOUR, resolution: 3600, now })).totals.web!.requests).toBe(1);
    // A day later the minute is gone, its ten minutes and hour are kept.
    await stub.compact(now + 2 * 24 * HOUR);
    const later = await stub.read({ rangeMs: 7 * 24 * HOUR, resolution: 3600, now: now + 2 * 24 * HOUR });
    expect(later.totals.web!.requests).toBe(1);
    expect((await stub.size()).points).toBe(2);
    // Past 30 days nothing is left.
    await stub.compact(now + 31 * 24 * HOUR);
    expect((await stub.size()).points).toBe(0);
  });

  it("bounds series and events per app, however many dynos and events arrive", async () => {
    const stub = await app("bounded");
    const now = Date.now();
    const sample = dynoData({ type: "web", rssMb: 50, swapMb: 0, totalMb: 50, quotaMb: 512, load1m: 0.1, restarts: 0 });
    const points = Array.from({ length: MAX_SERIES + 20 }, (_, i) => ({ t: now, series: `dyno:web.${i + 1}`, data: sample }));
    await stub.ingest({ points });
    expect((await stub.size()).series).toBe(MAX_SERIES);
    for (let i = 0; i < MAX_EVENTS / 100 + 5; i++) {
      await stub.ingest({ events: Array.from({ length: 100 }, (_, k) => ({ t: now - i * 1000 - k, kind: "ping" as const, message: `ping ${i}/${k}` })) });
    }
    await stub.compact(now);
    expect((await stub.size()).events).toBe(MAX_EVENTS);
  });

  it("keeps apps apart: many apps, each with only its own numbers", async () => {
    const now = Date.now();
    const apps = Array.from({ length: 40 }, (_, i) => `app-${i}`);
    await Promise.all(
      apps.map(async (name, i) => (await app(name)).ingest({ points: [{ t: now, series: "req:web", data: minuteOf(Array(i + 1).fill(200), 3) }] })),
    );
    const totals = await Promise.all(apps.map(async (name) => total(await (await app(name)).read({ rangeMs: HOUR, resolution: 60, now: now + 1 }))));
    expect(totals).toEqual(apps.map((_, i) => i + 1));
    const sizes = await Promise.all(apps.map(async (name) => (await (await app(name)).size()).points));
    expect(sizes).toEqual(apps.map(() => 1));
  });
});
