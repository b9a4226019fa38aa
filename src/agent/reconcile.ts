import type { DesiredDyno } from "../protocol/host.ts";

/** What the agent runs for one dyno id: the instance it is converging on. */
export interface RunningDynoSummary {
  id: string;
  instance: string;
}

/** A running dyno whose desired instance changed (restart or new release). */
export interface DynoReplacement {
  dyno: DesiredDyno;
  previousInstance: string;
}

/** The actions that take the running set to the desired set. */
export interface DynoDiff {
  start: DesiredDyno[];
  replace: DynoReplacement[];
  stop: string[];
}

/**
 * Compares the desired dynos with what runs and says what to start, replace and stop.
 * Keyed by dyno id; the first entry wins when either list repeats an id, so no id is
 * ever acted on twice in one pass.
 */
export function diffDynos(desired: readonly DesiredDyno[], running: readonly RunningDynoSummary[]): DynoDiff {
  const runningById = new Map<string, string>();
  for (const r of running) if (!runningById.has(r.id)) runningById.set(r.id, r.instance);

  const wanted = new Set<string>();
  const start: DesiredDyno[] = [];
  const replace: DynoReplacement[] = [];
  for (const dyno of desired) {
    if (wanted.has(dyno.id)) continue;
    wanted.add(dyno.id);
    const instance = runningById.get(dyno.id);
    if (instance === undefined) start.push(dyno);
    else if (instance !== dyno.instance) replace.push({ dyno, previousInstance: instance });
  }
  const stop = [...runningById.keys()].filter((id) => !wanted.has(id));
  return { start, replace, stop };
}

/** How long a crashed dyno waits before its next start. */
export interface BackoffSchedule {
  /** The wait after the second consecutive crash; it doubles with each crash after that. */
  baseMs: number;
  /** The longest wait (Heroku's cool-off tops out at 20 minutes). */
  maxMs: number;
}

/** The production schedule: 10 s after the second crash in a row, doubling to 20 minutes. */
export const HEROKU_BACKOFF: BackoffSchedule = { baseMs: 10_000, maxMs: 20 * 60_000 };

/**
 * The wait before restarting a dyno after its `consecutiveCrashes`-th crash in a row: none
 * after the first (a one-off fault should cost nothing), then base, 2×base, 4×base … up to max.
 */
export function restartDelayMs(consecutiveCrashes: number, schedule: BackoffSchedule = HEROKU_BACKOFF): number {
  if (!(consecutiveCrashes > 1)) return 0;
  const exponent = Math.min(consecutiveCrashes - 2, 52); // past 2^52 the product only overflows
  return Math.min(schedule.maxMs, schedule.baseMs * 2 ** exponent);
}
