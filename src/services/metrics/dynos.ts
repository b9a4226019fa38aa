import { and, eq, inArray, notInArray } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { appFeatures, dynos } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import type { MetricsBatch } from "../../metrics/reading.ts";
import { dynoData } from "../../metrics/series.ts";
import { type DynoErrorCode, type DynoMetrics, type DynoUsageReport, type LogLine, ONE_OFF_TYPES } from "../../protocol/host.ts";
import { LOG_RUNTIME_METRICS } from "../apps/features.ts";
import { appendLogLines } from "../logs/logs.ts";
import { ingestMetrics } from "./metrics.ts";

/** Heroku's name for a dyno in runtime-metric lines: `heroku.<app>.<dyno id>`. */
const sampleSource = (appId: string, dynoId: string) => `heroku.${appId}.${dynoId}`;
const mb = (x: number) => `${x.toFixed(2)}MB`;

/** Heroku's two `log-runtime-metrics` lines for one dyno's sample. */
export function runtimeMetricLines(appId: string, dyno: { id: string; name: string }, usage: DynoUsageReport, quotaMb: number): string[] {
  const prefix = `source=${dyno.name} dyno=${sampleSource(appId, dyno.id)}`;
  return [
    `${prefix} sample#memory_total=${mb(usage.memory_total_mb)} sample#memory_rss=${mb(usage.memory_rss_mb)} sample#memory_cache=${mb(usage.memory_cache_mb)} sample#memory_swap=${mb(usage.memory_swap_mb)} sample#memory_pgpgin=${usage.memory_pgpgin}pages sample#memory_pgpgout=${usage.memory_pgpgout}pages sample#memory_quota=${mb(quotaMb)}`,
    `${prefix} sample#load_avg_1m=${usage.load_avg_1m.toFixed(2)} sample#load_avg_5m=${usage.load_avg_5m.toFixed(2)} sample#load_avg_15m=${usage.load_avg_15m.toFixed(2)}`,
  ];
}

const ERROR_TEXT: Record<DynoErrorCode, string> = {
  R10: "Error R10 (Boot timeout)",
  R14: "Error R14 (Memory quota exceeded)",
  R15: "Error R15 (Memory quota vastly exceeded)",
};

/**
 * A host's report of its dynos' usage: each sample goes to its app's metrics (restarts and
 * errors as events too), and apps with `log-runtime-metrics` get Heroku's sample lines in
 * their log. Only dynos placed on the reporting host count (one-off dynos are not charted);
 * the time is the control plane's.
 */
export async function recordDynoMetrics(
  ctx: { db: Database; env: Pick<Bindings, "APP_METRICS" | "LOG_CHANNEL"> },
  hostId: string,
  reports: DynoMetrics[],
): Promise<void> {
  if (!reports.length) return;
  const placed = await ctx.db
    .select({ id: dynos.id, appId: dynos.appId, name: dynos.name, type: dynos.type })
    .from(dynos)
    .where(
      and(
        inArray(
          dynos.id,
          reports.map((r) => r.id),
        ),
        eq(dynos.hostId, hostId),
        notInArray(dynos.type, [...ONE_OFF_TYPES]),
      ),
    );
  if (!placed.length) return;
  const appIds = [...new Set(placed.map((d) => d.appId))];
  const logging = new Set(
    (
      await ctx.db
        .select({ appId: appFeatures.appId })
        .from(appFeatures)
        .where(and(inArray(appFeatures.appId, appIds), eq(appFeatures.name, LOG_RUNTIME_METRICS), eq(appFeatures.enabled, true)))
    ).map((r) => r.appId),
  );
  const now = Date.now();
  const byId = new Map(reports.map((r) => [r.id, r]));
  const batches = new Map<string, Required<MetricsBatch>>();
  const lines: LogLine[] = [];
  for (const dyno of placed) {
    const report = byId.get(dyno.id)!;
    const batch = batches.get(dyno.appId) ?? { points: [], events: [] };
    batches.set(dyno.appId, batch);
    const usage = report.usage;
    const data = dynoData({
      type: dyno.type,
      rssMb: usage?.memory_rss_mb ?? 0,
      swapMb: usage?.memory_swap_mb ?? 0,
      totalMb: usage?.memory_total_mb ?? 0,
      quotaMb: report.memory_quota_mb,
      load1m: usage?.load_avg_1m ?? 0,
      restarts: report.restarts,
    });
    if (!usage) data.samples = 0;
    batch.points.push({ t: now, series: `dyno:${dyno.name}`, data });
    for (const code of report.errors) batch.events.push({ t: now, kind: "error", code, dyno: dyno.name, message: `${dyno.name}: ${ERROR_TEXT[code]}` });
    if (usage && logging.has(dyno.appId)) {
      for (const text of runtimeMetricLines(dyno.appId, dyno, usage, report.memory_quota_mb))
        lines.push({ app_id: dyno.appId, dyno: dyno.name, source: "heroku", text, ts: now });
    }
  }
  await Promise.all([appendLogLines(ctx.env, lines), ...[...batches].map(([appId, batch]) => ingestMetrics(ctx.env, appId, batch))]);
}
