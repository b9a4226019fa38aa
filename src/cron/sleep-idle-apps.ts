import { pushChanges, type ServiceContext } from "../services/context.ts";
import { logEvent } from "../services/logs.ts";
import { recordEvents } from "../services/metrics.ts";
import { idleAfterMs, sleepIdleApps } from "../services/sleep.ts";

/**
 * Puts eco apps idle for 30 minutes to sleep: each dyno's log says `Idling` (its host then
 * writes the stop and `State changed from up to down`), and the hosts stop the dynos.
 */
export async function sleepIdleAppsJob(run: ServiceContext, now: Date): Promise<{ slept_apps: number; stopped_dynos: number }> {
  const { apps, slept, changes } = await sleepIdleApps(run.db, now, idleAfterMs(run.env));
  for (const d of slept) run.after(logEvent(run.env, d.appId, "heroku", d.name, "Idling"));
  for (const appId of new Set(slept.map((d) => d.appId)))
    recordEvents(run, appId, [{ t: now.getTime(), kind: "sleep", message: "Idling: the app's dynos went to sleep" }]);
  pushChanges(run, changes);
  return { slept_apps: apps, stopped_dynos: changes.stop.length };
}
