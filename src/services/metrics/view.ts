import { and, eq } from "drizzle-orm";
import { z } from "zod";
import type { Database } from "../../db/client.ts";
import { type AppRow, formations } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { invalidParams } from "../../errors.ts";
import { describeZodError } from "../../lib/validate.ts";
import type { MetricsReading } from "../../metrics/reading.ts";
import { RANGES, type RangeName } from "../../metrics/series.ts";
import { getAccount } from "../access/accounts.ts";
import { ECO_SIZE } from "../eco/eco.ts";
import { ecoSummary } from "../eco/keep-alive.ts";
import { readMetrics } from "./metrics.ts";

const QUERY = z
  .object({
    range: z.enum(Object.keys(RANGES) as [RangeName, ...RangeName[]]).default("24h"),
    process_type: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,29}$/, "must be a process type such as web or worker")
      .optional(),
  })
  .strict();
export type MetricsViewQuery = z.infer<typeof QUERY>;

/** The query string of a metrics request (each parameter's values), or 422 invalid_params naming what is wrong. */
export function metricsQuery(params: Record<string, string[]>): MetricsViewQuery {
  const repeated = Object.keys(params).find((k) => params[k]!.length > 1);
  if (repeated) throw invalidParams(`${repeated} may be given once.`);
  const parsed = QUERY.safeParse(Object.fromEntries(Object.entries(params).map(([k, v]) => [k, v[0]])));
  if (!parsed.success) throw invalidParams(describeZodError(parsed.error));
  return parsed.data;
}

/** The owner's eco dyno hours, for apps that run eco dynos: hours used, the pool, and the month's projections. */
export interface EcoView {
  month: string;
  pool_hours: number;
  used_hours: number;
  projected_hours: { with_keep_alive: number; round_the_clock: number; without_keep_alive: number };
  exhausted_until: string | null;
}

export type MetricsView = MetricsReading & { app: { id: string; name: string }; range: RangeName; process_type: string | null; eco: EcoView | null };

const hours = (s: number) => Math.round((s / 3600) * 100) / 100;

/** An app's metrics over a range, one process type's or all, with its owner's eco hours when it runs eco dynos. */
export async function appMetricsView(db: Database, env: Bindings, app: Pick<AppRow, "id" | "name" | "ownerId">, query: MetricsViewQuery): Promise<MetricsView> {
  const reading = await readMetrics(env, app.id, query.range);
  const type = query.process_type ?? null;
  if (type) {
    reading.requests = Object.fromEntries(Object.entries(reading.requests).filter(([t]) => t === type));
    reading.totals = Object.fromEntries(Object.entries(reading.totals).filter(([t]) => t === type));
    reading.dynos = Object.fromEntries(Object.entries(reading.dynos).filter(([, d]) => d.type === type));
  }
  const [eco] = await db
    .select({ quantity: formations.quantity })
    .from(formations)
    .where(and(eq(formations.appId, app.id), eq(formations.size, ECO_SIZE)))
    .limit(1);
  let ecoView: EcoView | null = null;
  if (eco) {
    const now = new Date();
    const summary = await ecoSummary(db, env, await getAccount(db, app.ownerId), now);
    ecoView = {
      month: now.toISOString().slice(0, 7),
      pool_hours: hours(summary.poolS),
      used_hours: hours(summary.usedS),
      projected_hours: {
        with_keep_alive: hours(summary.projection.plannedS),
        round_the_clock: hours(summary.projection.roundTheClockS),
        without_keep_alive: hours(summary.projection.withoutKeepAliveS),
      },
      exhausted_until: summary.exhaustedUntil?.toISOString() ?? null,
    };
  }
  return { app: { id: app.id, name: app.name }, range: query.range, process_type: type, ...reading, eco: ecoView };
}
