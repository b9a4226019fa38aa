import type { Bindings } from "../env.ts";
import { capLine, type LineInput } from "../logs/lines.ts";
import type { LogLine } from "../protocol/host.ts";

/** The LogChannel object of one app. */
export function logChannel(env: Pick<Bindings, "LOG_CHANNEL">, appId: string) {
  return env.LOG_CHANNEL.get(env.LOG_CHANNEL.idFromName(appId));
}

/** Appends agent-shipped lines to each app's log channel, in order. */
export async function appendLogLines(env: Pick<Bindings, "LOG_CHANNEL">, lines: LogLine[]): Promise<void> {
  const byApp = new Map<string, LineInput[]>();
  for (const l of lines) {
    const list = byApp.get(l.app_id) ?? [];
    list.push({ ts: Math.round(l.ts * 1000), source: l.source, dyno: l.dyno, text: capLine(l.text) });
    byApp.set(l.app_id, list);
  }
  await Promise.all([...byApp].map(([appId, list]) => logChannel(env, appId).append(list)));
}

/** Records a platform event in an app's log, e.g. `app[api]: Release v7 created by ...`. */
export async function logEvent(env: Pick<Bindings, "LOG_CHANNEL">, appId: string, source: "app" | "heroku", dyno: string, text: string): Promise<void> {
  await logChannel(env, appId).append([{ ts: Date.now() * 1000, source, dyno, text: capLine(text) }]);
}
