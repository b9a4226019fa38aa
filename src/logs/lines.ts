import { rfc3339Micros } from "./logplex.ts";

// An app's log lines: what is stored, how a reader filters them, how they read in Heroku's
// format. Shared by the LogChannel object, its subscribers and drains, and the services.

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

export interface StoredLine {
  id: number;
  /** Microseconds since the epoch, so ordering survives equal milliseconds. */
  ts: number;
  source: "app" | "heroku";
  dyno: string;
  text: string;
}

export interface LineInput {
  ts: number;
  source: "app" | "heroku";
  dyno: string;
  text: string;
}

export interface RecentQuery extends LineFilter {
  limit: number;
  afterId?: number;
}

/** A live tail: history first (or everything after `afterId` when resuming), then new lines until `deadline`. */
export interface SubscribeQuery extends LineFilter {
  lines: number;
  afterId?: number;
  /** Milliseconds since the epoch at which the server ends the stream. */
  deadline: number;
  /** The account it is for: its streams end when it loses access to the app. */
  account?: string;
}

/** What a log reader asks for: a dyno name (`web.1`) or a process type (`web`), and a source. */
export interface LineFilter {
  dyno?: string;
  source?: string;
}

/** The fields of a stored line a filter and a subscriber look at. */
export interface FilterableLine {
  id: number;
  ts: number;
  source: string;
  dyno: string;
  text: string;
}

/** The JavaScript twin of LogChannel's SQL filter: a name matches exactly, a type matches its dynos. */
export function lineMatches(line: Pick<FilterableLine, "dyno" | "source">, f: LineFilter): boolean {
  if (f.source && line.source !== f.source) return false;
  if (!f.dyno) return true;
  return f.dyno.includes(".") ? line.dyno === f.dyno : line.dyno === f.dyno || line.dyno.startsWith(`${f.dyno}.`);
}
