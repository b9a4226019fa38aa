import { and, eq, inArray, lt, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { accounts, appFeatures, apps, appTraffic, keepAlive, type AccountRow } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { APP_NAME_RE } from "../../lib/app-names.ts";
import { publicUrls, webUrl } from "../../lib/urls.ts";
import { routesFor } from "../../router/index.ts";
import { type InternalPing, internalPings, type Route } from "../../router/pings.ts";
import { invalidParams } from "../../errors.ts";
import { type Bedtime, type BudgetInput, inBedtime, type KeepAliveBudget, type MonthProjection, planKeepAlive, projectMonth } from "./bedtime.ts";
import { ECO_SIZE, ecoExhausted, ecoPoolSeconds, ecoUsage, monthStart } from "./eco.ts";
import { KEEP_ALIVE } from "../apps/features.ts";
import { logChannel } from "../logs/logs.ts";
import { idleAfterMs } from "./sleep.ts";
import { recordEvents } from "../metrics/metrics.ts";

/** The scheduled interval (`*\/10 * * * *`): one ping per app per slot of this length. */
export const INTERVAL_S = 600;
/** Apps one queue message (one consumer run) pings: ~3 subrequests each, well inside a run's budget. */
export const PINGS_PER_MESSAGE = 100;
/** Pings in flight at once within one run. */
export const PING_CONCURRENCY = 16;
/** A ping that has no answer after this long is recorded as timed out (the router's own limit). */
export const PING_TIMEOUT_MS = 30_000;
/** What the router sees as the pinger's User-Agent. */
export const KEEP_ALIVE_AGENT = "dynoplane-keep-alive/1";
/** Queue messages per `sendBatch` (Cloudflare: at most 100 and 256 kB). */
const SEND_BATCH = 25;

/** The slot a time falls in: the same for every run of one scheduled tick, whenever it runs. */
export const slotOf = (at: Date) => Math.floor(at.getTime() / 1000 / INTERVAL_S);

/** A queued share of one scheduled run's pings. */
export interface KeepAliveMessage {
  slot: number;
  /** The run's time (epoch ms): what the pings count as. */
  at: number;
  apps: string[];
}

/** Routes a request through the Worker's router, in-process (the app's own `fetch`). */
export type RouteFn = (request: Request) => Promise<Response>;

export type KeepAliveReason = "due" | "pinged" | "bedtime" | "exhausted" | "no-web";

/** What a run decides for one app with keep-alive on. */
export interface KeepAliveDecision {
  appId: string;
  name: string;
  ownerId: string;
  eco: boolean;
  reason: KeepAliveReason;
  /** Eco apps only. */
  bedtime: Bedtime | null;
  lastPingedAt: Date | null;
  lastStatus: number | null;
  lastLatencyMs: number | null;
  lastError: string | null;
}

/** An account's keep-alive plan: its figures and what they give. */
export interface AccountPlan {
  input: BudgetInput;
  budget: KeepAliveBudget;
}

/**
 * Every app with keep-alive on (or one account's), with what a run at `now` does for it:
 * due for a ping, or why not (pinged in this slot already, asleep for the night, its
 * owner's eco hours spent, no web dynos). Each account's eco apps share one plan that
 * leaves the pool above zero at the month's end.
 */
export async function keepAliveDecisions(
  db: Database,
  env: Pick<Bindings, "ECO_DYNO_HOURS" | "ECO_DYNO_HOURS_VERIFIED" | "ECO_IDLE_MINUTES">,
  now: Date,
  ownerId?: string,
): Promise<{ decisions: KeepAliveDecision[]; plans: Map<string, AccountPlan> }> {
  const enabled = and(eq(appFeatures.appId, apps.id), eq(appFeatures.name, KEEP_ALIVE), eq(appFeatures.enabled, true));
  const rows = await db
    .select({
      appId: apps.id,
      name: apps.name,
      ownerId: apps.ownerId,
      tier: apps.processTier,
      verified: accounts.verified,
      ecoExhaustedUntil: accounts.ecoExhaustedUntil,
      lastSlot: keepAlive.lastSlot,
      startHour: keepAlive.bedtimeStartHour,
      lastPingedAt: keepAlive.lastPingedAt,
      lastStatus: keepAlive.lastStatus,
      lastLatencyMs: keepAlive.lastLatencyMs,
      lastError: keepAlive.lastError,
      web: sql<number>`coalesce((select sum(f.quantity) from formations f where f.app_id = ${apps.id} and f.type = 'web'), 0)::int`,
      ecoDynos: sql<number>`coalesce((select sum(f.quantity) from formations f where f.app_id = ${apps.id} and f.size = ${ECO_SIZE}), 0)::int`,
    })
    .from(appFeatures)
    .innerJoin(apps, enabled)
    .innerJoin(accounts, eq(accounts.id, apps.ownerId))
    .leftJoin(keepAlive, eq(keepAlive.appId, apps.id))
    .where(ownerId ? eq(apps.ownerId, ownerId) : undefined);
  const eco = rows.filter((r) => r.tier === "eco" && r.ecoDynos > 0);

  const traffic = new Map<string, number[]>();
  if (eco.length) {
    const hours = await db
      .select({ appId: appTraffic.appId, hour: appTraffic.hour, requests: appTraffic.requests })
      .from(appTraffic)
      .innerJoin(appFeatures, and(eq(appFeatures.appId, appTraffic.appId), eq(appFeatures.name, KEEP_ALIVE), eq(appFeatures.enabled, true)))
      .innerJoin(apps, eq(apps.id, appTraffic.appId))
      .where(ownerId ? eq(apps.ownerId, ownerId) : undefined);
    for (const h of hours) {
      const list = traffic.get(h.appId) ?? Array.from({ length: 24 }, () => 0);
      list[h.hour] = h.requests;
      traffic.set(h.appId, list);
    }
  }

  const owners = [...new Set(eco.map((r) => r.ownerId))];
  const usage = await ecoUsage(db, owners, now);
  const elapsedS = Math.max(1, (now.getTime() - monthStart(now).getTime()) / 1000);
  const plans = new Map<string, AccountPlan>();
  for (const owner of owners) {
    const kept = eco.filter((r) => r.ownerId === owner);
    const used = usage.get(owner)!;
    const keptIds = new Set(kept.map((r) => r.appId));
    const otherS = [...used.apps].filter(([id]) => !keptIds.has(id)).reduce((n, [, s]) => n + s, 0);
    const input: BudgetInput = {
      now,
      poolS: ecoPoolSeconds(env, kept[0]!),
      usedS: used.used,
      idleS: idleAfterMs(env) / 1000,
      intervalS: INTERVAL_S,
      otherRate: otherS / elapsedS,
      apps: kept.map((r) => ({ appId: r.appId, dynos: r.ecoDynos, traffic: traffic.get(r.appId) ?? null, startHour: r.startHour })),
    };
    plans.set(owner, { input, budget: planKeepAlive(input) });
  }

  const slot = slotOf(now);
  const decisions = rows.map((r): KeepAliveDecision => {
    const isEco = r.tier === "eco" && r.ecoDynos > 0;
    const bedtime = isEco ? plans.get(r.ownerId)!.budget.bedtimes.get(r.appId)! : null;
    const reason: KeepAliveReason =
      (r.lastSlot ?? 0) >= slot
        ? "pinged"
        : r.web <= 0
          ? "no-web"
          : isEco && ecoExhausted(r, now)
            ? "exhausted"
            : bedtime && inBedtime(bedtime, now)
              ? "bedtime"
              : "due";
    return {
      appId: r.appId,
      name: r.name,
      ownerId: r.ownerId,
      eco: isEco,
      reason,
      bedtime,
      lastPingedAt: r.lastPingedAt,
      lastStatus: r.lastStatus,
      lastLatencyMs: r.lastLatencyMs,
      lastError: r.lastError,
    };
  });
  return { decisions, plans };
}

/** One ping's outcome. */
export interface PingResult {
  appId: string;
  status: number | null;
  ms: number;
  error: string | null;
}

interface PingDeps {
  db: Database;
  env: Bindings;
  route: RouteFn;
  after(work: Promise<unknown>): void;
}

/**
 * Pings apps for one slot, each at most once whoever else tries (the slot is claimed in
 * the database first, so a repeated or overlapping run, or a queue message delivered
 * twice, pings nothing twice). Each ping is a GET of the app's own URL on the platform's
 * apps domain, routed in-process through the Worker's router (no network, no redirect
 * followed, nothing a user chose): it is traffic, so the app stays awake and the router
 * logs it. The app's log gets a `heroku[keep-alive]` line with the status and time.
 */
export async function pingApps(deps: PingDeps, slot: number, at: Date, appIds: string[]): Promise<PingResult[]> {
  if (!appIds.length) return [];
  const claimed = await deps.db
    .update(keepAlive)
    .set({ lastSlot: slot })
    .where(and(inArray(keepAlive.appId, appIds), lt(keepAlive.lastSlot, slot)))
    .returning({ appId: keepAlive.appId });
  if (!claimed.length) return [];
  // Still enabled, and by its name now (a rename since the run was planned is followed).
  const targets = await deps.db
    .select({ appId: apps.id, name: apps.name })
    .from(apps)
    .innerJoin(appFeatures, and(eq(appFeatures.appId, apps.id), eq(appFeatures.name, KEEP_ALIVE), eq(appFeatures.enabled, true)))
    .where(
      inArray(
        apps.id,
        claimed.map((c) => c.appId),
      ),
    );
  const routes = await routesFor(
    deps.db,
    targets.map((t) => t.appId),
  );
  const results = await mapBounded(targets, PING_CONCURRENCY, (t) => pingOne(deps, t, at, routes.get(t.appId) ?? null));
  if (results.length) {
    const values = sql.join(
      results.map((r) => sql`(${r.appId}::uuid, ${r.status}::int, ${r.ms}::int, ${r.error}::text)`),
      sql`, `,
    );
    await deps.db.execute(sql`
      update ${keepAlive} set last_pinged_at = ${at}, last_status = v.status, last_latency_ms = v.ms, last_error = v.error
      from (values ${values}) as v(app_id, status, ms, error) where ${keepAlive.appId} = v.app_id`);
    // A ping is traffic: the app is not idle as of the run's time.
    await deps.db
      .update(apps)
      .set({ lastRequestAt: sql`greatest(${apps.lastRequestAt}, ${at})` })
      .where(
        inArray(
          apps.id,
          results.map((r) => r.appId),
        ),
      );
  }
  return results;
}

async function pingOne(deps: PingDeps, target: { appId: string; name: string }, at: Date, route: Route | null): Promise<PingResult> {
  const started = Date.now();
  // Names are checked when apps are made and renamed; a URL is built only from a valid one.
  if (!APP_NAME_RE.test(target.name)) return { appId: target.appId, status: null, ms: 0, error: "invalid app name" };
  const urls = publicUrls(deps.env);
  const url = webUrl(urls, target.name);
  const request = new Request(url, {
    headers: { Host: `${target.name}.${urls.appsDomain}${urls.portSuffix}`, "User-Agent": KEEP_ALIVE_AGENT, Accept: "*/*" },
  });
  const ping: InternalPing = { db: deps.db, route, routerLines: [] };
  internalPings.set(request, ping);
  let result: PingResult;
  try {
    const response = await withTimeout(deps.route(request), PING_TIMEOUT_MS);
    await response.body?.cancel().catch(() => {});
    result = { appId: target.appId, status: response.status, ms: Date.now() - started, error: null };
  } catch (err) {
    const timedOut = err instanceof PingTimeout;
    result = { appId: target.appId, status: null, ms: Date.now() - started, error: timedOut ? "timeout" : String(err).slice(0, 200) };
  }
  const said = result.status !== null ? `status=${result.status}` : `error="${result.error}"`;
  // The router's line and the pinger's, in one write to the app's log.
  const now = Date.now() * 1000;
  const lines = [
    ...ping.routerLines.map((text, i) => ({ ts: now + i, source: "heroku" as const, dyno: "router", text })),
    {
      ts: now + ping.routerLines.length,
      source: "heroku" as const,
      dyno: "keep-alive",
      text: `Pinged ${url} at=${at.toISOString()} ${said} service=${result.ms}ms`,
    },
  ];
  deps.after(logChannel(deps.env, target.appId).append(lines));
  recordEvents(deps, target.appId, [{ kind: "ping", message: `Keep-alive ping: ${said} in ${result.ms} ms` }]);
  return result;
}

class PingTimeout extends Error {}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new PingTimeout()), ms)));
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `fn` over `items` with at most `limit` at once, keeping the order of results. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The scheduled keep-alive: decides which apps are due, sends all but the first share of
 * them to the queue (each message one consumer run's worth), and pings the first share
 * itself. Without a queue binding every share is pinged here, one after another.
 */
export async function keepAliveJob(
  deps: PingDeps,
  now: Date,
): Promise<{ kept_apps: number; due: number; pinged_here: number; queued_messages: number; bedtime: number; exhausted: number }> {
  const { decisions } = await keepAliveDecisions(deps.db, deps.env, now);
  const due = decisions.filter((d) => d.reason === "due").map((d) => d.appId);
  const shares: string[][] = [];
  for (let i = 0; i < due.length; i += PINGS_PER_MESSAGE) shares.push(due.slice(i, i + PINGS_PER_MESSAGE));
  const slot = slotOf(now);
  const queue = deps.env.KEEP_ALIVE_QUEUE;
  const queued = queue ? shares.slice(1) : [];
  for (let i = 0; i < queued.length; i += SEND_BATCH) {
    await queue.sendBatch(queued.slice(i, i + SEND_BATCH).map((share) => ({ body: { slot, at: now.getTime(), apps: share } satisfies KeepAliveMessage })));
  }
  let pinged = 0;
  for (const share of queue ? shares.slice(0, 1) : shares) pinged += (await pingApps(deps, slot, now, share)).length;
  const count = (reason: KeepAliveReason) => decisions.filter((d) => d.reason === reason).length;
  return {
    kept_apps: decisions.length,
    due: due.length,
    pinged_here: pinged,
    queued_messages: queued.length,
    bedtime: count("bedtime"),
    exhausted: count("exhausted"),
  };
}

/** An account's eco dyno hours as the dashboard shows them. */
export interface EcoSummary {
  poolS: number;
  usedS: number;
  exhaustedUntil: Date | null;
  projection: MonthProjection;
  /** Each keep-alive app's state now. */
  apps: KeepAliveDecision[];
  /** Seconds each kept app may be awake per day for the rest of the month. */
  awakeSPerDay: number;
}

/** The pool, this month's use, the month's projections and each keep-alive app's state, for one account. */
export async function ecoSummary(db: Database, env: Bindings, account: AccountRow, now: Date): Promise<EcoSummary> {
  const { decisions, plans } = await keepAliveDecisions(db, env, now, account.id);
  let plan = plans.get(account.id);
  if (!plan) {
    // No eco app kept awake: the projection is the account's pace alone.
    const usedS = (await ecoUsage(db, [account.id], now)).get(account.id)!.used;
    const elapsedS = Math.max(1, (now.getTime() - monthStart(now).getTime()) / 1000);
    const input: BudgetInput = {
      now,
      poolS: ecoPoolSeconds(env, account),
      usedS,
      idleS: idleAfterMs(env) / 1000,
      intervalS: INTERVAL_S,
      otherRate: usedS / elapsedS,
      apps: [],
    };
    plan = { input, budget: planKeepAlive(input) };
  }
  return {
    poolS: plan.input.poolS,
    usedS: plan.input.usedS,
    exhaustedUntil: ecoExhausted(account, now) ? account.ecoExhaustedUntil : null,
    projection: projectMonth(plan.input, plan.budget),
    apps: decisions,
    awakeSPerDay: plan.budget.awakeSPerDay,
  };
}

/** Sets an app's keep-alive bedtime: a fixed UTC hour it starts at, or null for its quietest hours. */
export async function setBedtimeStart(db: Database, appId: string, hour: number | null): Promise<void> {
  if (hour !== null && !(Number.isInteger(hour) && hour >= 0 && hour <= 23)) throw invalidParams("Bedtime must start at a whole UTC hour from 0 to 23.");
  await db
    .insert(keepAlive)
    .values({ appId, bedtimeStartHour: hour })
    .onConflictDoUpdate({ target: keepAlive.appId, set: { bedtimeStartHour: hour } });
}
