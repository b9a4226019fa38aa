import type { Database } from "../db/client.ts";
import { pushDynoChanges, type CommandConfig } from "../services/host-commands.ts";
import { sleepIdleApps } from "../services/sleep.ts";

/** Puts eco apps idle for 30 minutes to sleep and tells their hosts to stop the dynos. */
export async function sleepIdleAppsJob(db: Database, config: CommandConfig, now: Date): Promise<{ slept_apps: number; stopped_dynos: number }> {
  const { apps, changes } = await sleepIdleApps(db, now);
  await pushDynoChanges(db, config, changes);
  return { slept_apps: apps, stopped_dynos: changes.stop.length };
}
