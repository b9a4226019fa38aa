import { sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import type { Bindings } from "../env.ts";

/**
 * The time a scheduled run acts at: the time it was scheduled for, unless that is further
 * from the Worker's own clock than CRON_CLOCK_MAX_SKEW_S allows (a run fired by hand with
 * another time), then the Worker's clock.
 */
export function runClock(scheduledTime: number, env: Pick<Bindings, "CRON_CLOCK_MAX_SKEW_S">, wall = Date.now()): Date {
  const skew = Number(env.CRON_CLOCK_MAX_SKEW_S ?? 300);
  const allowed = Number.isFinite(skew) && skew >= 0 ? skew * 1000 : 300_000;
  return new Date(Number.isFinite(scheduledTime) && Math.abs(scheduledTime - wall) <= allowed ? scheduledTime : wall);
}

/** Makes the database stamp this connection's changes (dyno usage history) with the run's time. */
export async function actAt(db: Database, at: Date): Promise<void> {
  await db.execute(sql`select set_config('dynoplane.clock', ${at.toISOString()}, false)`);
}
