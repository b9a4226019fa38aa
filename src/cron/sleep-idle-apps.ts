import type { ServiceContext } from "../services/context.ts";
import { idleAfterMs, sleepIdleApps } from "../services/eco/sleep.ts";

/**
 * Puts eco apps idle for 30 minutes to sleep (see sleepIdleApps: their events say `Idling`
 * and stop the dynos once the run dispatches them).
 */
export async function sleepIdleAppsJob(run: ServiceContext, now: Date): Promise<{ slept_apps: number; stopped_dynos: number }> {
  const { apps, changes } = await sleepIdleApps(run.db, now, idleAfterMs(run.env));
  return { slept_apps: apps, stopped_dynos: changes.stop.length };
}
