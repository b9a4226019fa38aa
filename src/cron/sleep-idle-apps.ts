import { pushChanges, type ServiceContext } from "../services/context.ts";
import { sleepIdleApps } from "../services/sleep.ts";

/** Puts eco apps idle for 30 minutes to sleep and tells their hosts to stop the dynos. */
export async function sleepIdleAppsJob(run: ServiceContext, now: Date): Promise<{ slept_apps: number; stopped_dynos: number }> {
  const { apps, changes } = await sleepIdleApps(run.db, now);
  pushChanges(run, changes);
  return { slept_apps: apps, stopped_dynos: changes.stop.length };
}
