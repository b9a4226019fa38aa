import { fetch } from "undici";
import { deployLogApp } from "../../src/bench/log-app.ts";
import { api, platform, tlsAgent } from "./api.ts";
import { makeApp, type TestAccount } from "./factories.ts";

/** One event of a log stream; comments (keep-alives) are kept apart. */
export interface SseEvent {
  id: string | null;
  data: string;
}

/** A log stream being read: events so far, and ways to wait for more or to cut it. */
export interface SseReader {
  status: number;
  headers: Headers;
  events: SseEvent[];
  comments: string[];
  /** Resolves once an event satisfies `match` (checking those already read too). */
  waitFor(match: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Cuts the connection from the client side. */
  abort(): void;
  /** Starts reading a stream opened with `paused`. */
  resume(): void;
}

/** Opens a log session URL the way the CLI's EventSource does, and parses events as they arrive. */
export async function readSse(url: string, lastEventId?: string, opts: { paused?: boolean } = {}): Promise<SseReader> {
  const controller = new AbortController();
  const headers: Record<string, string> = { Accept: "text/event-stream", "Cache-Control": "no-cache" };
  if (lastEventId) headers["Last-Event-ID"] = lastEventId;
  const res = await fetch(url, { headers, signal: controller.signal, dispatcher: tlsAgent() });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters = new Set<() => void>();
  let done = false;
  let resume!: () => void;
  const resumed = new Promise<void>((r) => (resume = r));
  if (!opts.paused) resume();
  const ended = (async () => {
    await resumed;
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body) {
        const blocks = (buffer + decoder.decode(chunk as Uint8Array, { stream: true })).split("\n\n");
        buffer = blocks.pop()!;
        for (const block of blocks) {
          let id: string | null = null;
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else if (line.startsWith("id: ")) id = line.slice(4);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) events.push({ id, data: data.join("\n") });
        }
        for (const w of waiters) w();
      }
    } catch {
      // aborted by the test
    } finally {
      done = true;
      for (const w of waiters) w();
    }
  })();
  return {
    status: res.status,
    headers: res.headers as unknown as Headers,
    events,
    comments,
    ended,
    abort: () => controller.abort(),
    resume: () => resume(),
    waitFor(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        let scanned = 0;
        const check = () => {
          let found: SseEvent | undefined;
          while (!found && scanned < events.length) if (match(events[scanned++]!)) found = events[scanned - 1];
          if (found) finish(() => resolve(found));
          else if (done)
            finish(() =>
              reject(
                new Error(
                  `the stream ended without the awaited event; got:\n${events
                    .slice(-20)
                    .map((e) => e.data.slice(0, 200))
                    .join("\n")}`,
                ),
              ),
            );
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(
                new Error(
                  `timed out; got:\n${events
                    .slice(-20)
                    .map((e) => e.data.slice(0, 200))
                    .join("\n")}`,
                ),
              ),
            ),
          timeoutMs,
        );
        const finish = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
  };
}

/** Creates a log session through the API; returns its URL. */
export async function logSessionUrl(token: string, app: string, body: Record<string, unknown>): Promise<string> {
  const res = await api(`/apps/${app}/log-sessions`, { method: "POST", token, body });
  if (res.status !== 201) throw new Error(`creating a log session failed: ${res.status} ${res.text}`);
  return res.body.logplex_url;
}

/** An app's whole log (its last 1,500 lines, formatted), read through a log session as `heroku logs` reads it. */
export async function wholeLog(token: string, app: string, body: Record<string, unknown> = {}): Promise<string[]> {
  const reader = await readSse(await logSessionUrl(token, app, { lines: 1500, ...body }));
  await reader.ended;
  return reader.events.map((e) => e.data);
}

/** The text after `source[dyno]: ` of a formatted line. */
export const lineText = (data: string) => data.replace(/^\S+ [a-z]+\[[^\]]+\]: /, "");

/** The log app's URL through the router. */
export const logAppUrl = (app: string, pathname = "/") => `https://${app}.apps.localhost:${platform().port}${pathname}`;

/** A fresh app running the log app (see src/bench/log-app.ts), up and answering. */
export async function makeLogApp(owner: TestAccount): Promise<{ name: string; id: string; url: (p?: string) => string }> {
  const app = await makeApp(owner);
  await deployLogApp({ apiUrl: platform().apiUrl, token: owner.token, app: app.name, dispatcher: tlsAgent() }, logAppUrl(app.name));
  return { ...app, url: (p = "/") => logAppUrl(app.name, p) };
}

/** Asks the log app for something (print lines, start a flood) and returns its JSON. */
export async function askLogApp(url: string): Promise<any> {
  const res = await fetch(url, { dispatcher: tlsAgent() });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}
