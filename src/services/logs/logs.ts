import type { Bindings } from "../../env.ts";
import { capLine, type LineInput } from "../../logs/lines.ts";
import type { LogLine } from "../../protocol/host.ts";

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

/** How long router lines wait to be written together; a line is in the log within this. */
export const BATCH_WINDOW_MS = 25;
/** Lines written at once per app at most (a busy app's lines go in several writes). */
const BATCH_MAX_LINES = 500;

/**
 * Platform lines (the router's `heroku[router]` line per request) gathered for the next
 * BATCH_WINDOW_MS and written one append per app, instead of one append per line. One per
 * Worker instance; the lines keep the time they were made.
 */
export class LineBatches {
  readonly #pending = new Map<string, LineInput[]>();
  #flushScheduled = false;

  /** Adds a line to the app's next write; `after` keeps the write going after the response (the request's waitUntil). */
  add(env: Pick<Bindings, "LOG_CHANNEL">, appId: string, source: "app" | "heroku", dyno: string, text: string, after: (work: Promise<unknown>) => void): void {
    const list = this.#pending.get(appId) ?? [];
    list.push({ ts: Date.now() * 1000, source, dyno, text: capLine(text) });
    this.#pending.set(appId, list);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    after(new Promise((resolve) => setTimeout(resolve, BATCH_WINDOW_MS)).then(() => this.#flush(env)));
  }

  async #flush(env: Pick<Bindings, "LOG_CHANNEL">): Promise<void> {
    this.#flushScheduled = false;
    const taken = [...this.#pending];
    this.#pending.clear();
    await Promise.all(
      taken.map(async ([id, lines]) => {
        for (let i = 0; i < lines.length; i += BATCH_MAX_LINES) await logChannel(env, id).append(lines.slice(i, i + BATCH_MAX_LINES));
      }),
    ).catch((err: unknown) => console.error(JSON.stringify({ router_log_lines_lost: taken.reduce((n, [, l]) => n + l.length, 0), error: String(err) })));
  }
}
