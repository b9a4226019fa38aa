import { nextMonthStart } from "./eco.ts";

/**
 * The keep-alive budget: how long each pinged eco app may stay awake per day for the rest
 * of the month without spending its account's pool, and when it sleeps (its bedtime, a
 * daily UTC window during which it is not pinged). Pure: the scheduled run feeds it the
 * figures of the moment and follows it; recomputed every run, it corrects itself as real
 * traffic spends more or less than planned.
 */

export const DAY_S = 86_400;
const DAY_MIN = 1_440;
/** Without enough router history, bedtime is centred on this UTC hour. */
export const DEFAULT_BEDTIME_CENTRE_HOUR = 4;
/** Requests an app's history needs before its quietest hours are believed. */
export const MIN_TRAFFIC_FOR_QUIET_HOURS = 48;

export interface KeptApp {
  appId: string;
  /** Eco dynos the app runs while awake (web and workers: they sleep together). */
  dynos: number;
  /** Routed requests per UTC hour of day (keep-alive pings excluded), or null. */
  traffic: number[] | null;
  /** A fixed bedtime start (UTC hour) the owner chose, or null. */
  startHour: number | null;
}

export interface BudgetInput {
  now: Date;
  /** The account's pool and what it used this month, in seconds. */
  poolS: number;
  usedS: number;
  /** The idle time before sleep and the scheduled interval: after its last ping an app stays up this long. */
  idleS: number;
  intervalS: number;
  /** Eco seconds per second the account's other eco apps spend (this month's pace). */
  otherRate: number;
  apps: KeptApp[];
}

/** A daily UTC window, in minutes from midnight; `lengthMin` 0 is no bedtime, 1,440 never pinged. */
export interface Bedtime {
  startMin: number;
  lengthMin: number;
}

export interface KeepAliveBudget {
  /** Seconds each pinged app may be awake per remaining day (at most a day). */
  awakeSPerDay: number;
  /** Seconds left in the month. */
  leftS: number;
  bedtimes: Map<string, Bedtime>;
}

/**
 * What is kept back so that the estimate's errors (a late ping, a slow sleep, visitors at
 * night) cannot spend the last of the pool: an hour per awake dyno.
 */
const marginS = (dynos: number) => 3_600 * Math.max(1, dynos);

/** Plans the month's remaining keep-alive: one awake allowance, and each app's bedtime. */
export function planKeepAlive(input: BudgetInput): KeepAliveBudget {
  const leftS = Math.max(0, (nextMonthStart(input.now).getTime() - input.now.getTime()) / 1000);
  const dynos = input.apps.reduce((n, a) => n + a.dynos, 0);
  const days = Math.max(leftS / DAY_S, 1 / DAY_S);
  const spendable = input.poolS - input.usedS - marginS(dynos) - input.otherRate * leftS;
  const awakeSPerDay = dynos ? Math.max(0, Math.min(DAY_S, spendable / dynos / days)) : DAY_S;
  // After the last ping of the day an app stays up until idle sleep takes it.
  const tailS = input.idleS + input.intervalS;
  const pingS = awakeSPerDay >= DAY_S ? DAY_S : Math.max(0, awakeSPerDay - tailS);
  const step = Math.max(1, Math.round(input.intervalS / 60));
  const lengthMin = pingS >= DAY_S ? 0 : Math.min(DAY_MIN, Math.ceil((DAY_MIN - pingS / 60) / step) * step);
  const bedtimes = new Map<string, Bedtime>();
  for (const app of input.apps) bedtimes.set(app.appId, { startMin: bedtimeStart(app, lengthMin), lengthMin });
  return { awakeSPerDay, leftS, bedtimes };
}

/**
 * Where an app's bedtime starts: the owner's hour; else the quietest stretch of its
 * router history (whole-hour starts, the least traffic inside the window, ties going to
 * the default); else centred on 04:00 UTC.
 */
export function bedtimeStart(app: Pick<KeptApp, "traffic" | "startHour">, lengthMin: number): number {
  if (app.startHour !== null) return (app.startHour % 24) * 60;
  const fallback = (((DEFAULT_BEDTIME_CENTRE_HOUR * 60 - Math.round(lengthMin / 2)) % DAY_MIN) + DAY_MIN) % DAY_MIN;
  const traffic = app.traffic;
  if (!traffic || lengthMin <= 0 || lengthMin >= DAY_MIN || traffic.reduce((a, b) => a + b, 0) < MIN_TRAFFIC_FOR_QUIET_HOURS) return fallback;
  let best = fallback;
  let bestCost = windowTraffic(traffic, fallback, lengthMin);
  for (let hour = 0; hour < 24; hour++) {
    const cost = windowTraffic(traffic, hour * 60, lengthMin);
    if (cost < bestCost) {
      best = hour * 60;
      bestCost = cost;
    }
  }
  return best;
}

/** Requests expected inside a window, spreading each hour's count evenly over its minutes. */
function windowTraffic(traffic: number[], startMin: number, lengthMin: number): number {
  let sum = 0;
  for (let m = 0; m < lengthMin; m += 10) {
    const minute = (startMin + m) % DAY_MIN;
    sum += (traffic[Math.floor(minute / 60)] ?? 0) * (Math.min(10, lengthMin - m) / 60);
  }
  return sum;
}

/** Whether `now` falls inside the bedtime window. */
export function inBedtime(bedtime: Bedtime, now: Date): boolean {
  if (bedtime.lengthMin <= 0) return false;
  if (bedtime.lengthMin >= DAY_MIN) return true;
  const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
  return (minute - bedtime.startMin + DAY_MIN) % DAY_MIN < bedtime.lengthMin;
}

/** `HH:MM` for a minute of the day. */
export const clockTime = (minute: number) =>
  `${String(Math.floor((minute % DAY_MIN) / 60)).padStart(2, "0")}:${String((minute % DAY_MIN) % 60).padStart(2, "0")}`;

export interface MonthProjection {
  usedS: number;
  poolS: number;
  /** Use by the month's end with keep-alive as planned (bedtimes included). */
  plannedS: number;
  /** ... if keep-alive pinged around the clock, with no bedtime. */
  roundTheClockS: number;
  /** ... without keep-alive: the account's other eco apps at this month's pace, the kept apps counted as asleep. */
  withoutKeepAliveS: number;
}

/** The month's projections the dashboard shows next to the pool. */
export function projectMonth(input: BudgetInput, budget: KeepAliveBudget): MonthProjection {
  const dynos = input.apps.reduce((n, a) => n + a.dynos, 0);
  const days = budget.leftS / DAY_S;
  const others = input.otherRate * budget.leftS;
  return {
    usedS: input.usedS,
    poolS: input.poolS,
    plannedS: input.usedS + dynos * budget.awakeSPerDay * days + others,
    roundTheClockS: input.usedS + dynos * budget.leftS + others,
    withoutKeepAliveS: input.usedS + others,
  };
}
