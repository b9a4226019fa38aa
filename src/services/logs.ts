import type { Bindings } from "../env.ts";
import { rfc3339Micros } from "../lib/logplex.ts";
import type { LineInput } from "../durable-objects/log-channel.ts";
import type { LogLine } from "../protocol/host.ts";

/** Heroku keeps the most recent 1,500 lines of an app's log. */
export const LOG_HISTORY = 1500;

/** Longest line kept; longer ones are cut with a marker. */
export const MAX_LINE_BYTES = 10 * 1024;
const CUT_MARKER = " [truncated]";

/** Cuts a line to MAX_LINE_BYTES (UTF-8), marking the cut. Pure. */
export function capLine(text: string): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= MAX_LINE_BYTES) return text;
  const kept = new TextDecoder().decode(bytes.slice(0, MAX_LINE_BYTES - CUT_MARKER.length)).replace(/\uFFFD$/, "");
  return kept + CUT_MARKER;
}

/** Heroku's line format: `2026-11-26T12:00:00.000000+00:00 app[web.1]: text`. Pure. */
export function formatLogLine(line: { ts: number; source: string; dyno: string; text: string }): string {
  return `${rfc3339Micros(line.ts)} ${line.source}[${line.dyno}]: ${line.text}`;
}

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
