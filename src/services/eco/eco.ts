import { and, eq, gt, inArray, isNotNull, isNull, lte, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { accounts, apps, dynos, dynoUsage, type AccountRow } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { isOneOffType } from "../../protocol/host.ts";
import type { ServiceContext } from "../context.ts";
import { exhaustedLine } from "../events/catalogue.ts";
import { emit } from "../events/outbox.ts";

/** The size whose dynos draw on an account's monthly pool (and sleep when idle). */
export const ECO_SIZE = "Eco";
const HOUR_S = 3600;

/** The first instant of `now`'s calendar month, UTC. */
export const monthStart = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
/** The first instant of the next calendar month, UTC. */
export const nextMonthStart = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));

/** A positive number of hours from a variable, else the default. */
function hoursVar(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== "" && Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** An account's monthly pool of eco dyno hours, in seconds: 550 h, 1,000 h once verified (both configurable). */
export function ecoPoolSeconds(env: Pick<Bindings, "ECO_DYNO_HOURS" | "ECO_DYNO_HOURS_VERIFIED">, account: Pick<AccountRow, "verified">): number {
  const hours = account.verified ? hoursVar(env.ECO_DYNO_HOURS_VERIFIED, 1000) : hoursVar(env.ECO_DYNO_HOURS, 550);
  return Math.round(hours * HOUR_S);
}

/** Eco seconds spent this month, per account and app. */
export interface EcoUsage {
  used: number;
  apps: Map<string, number>;
}

/**
 * Eco dyno seconds used in `now`'s calendar month by the given accounts, from the dyno
 * usage history: each stretch a dyno was up, clipped to the month and to `now`, to the
 * microsecond (answers round down to whole seconds). Stretches still open count to `now`.
 */
export async function ecoUsage(db: Database, accountIds: string[], now: Date): Promise<Map<string, EcoUsage>> {
  const result = new Map<string, EcoUsage>(accountIds.map((id) => [id, { used: 0, apps: new Map() }]));
  if (!accountIds.length) return result;
  const from = monthStart(now);
  const seconds = sql<number>`sum(extract(epoch from least(coalesce(${dynoUsage.endedAt}, ${now}), ${now}) - greatest(${dynoUsage.startedAt}, ${from})))::float8`;
  const rows = await db
    .select({ accountId: dynoUsage.accountId, appId: dynoUsage.appId, seconds })
    .from(dynoUsage)
    .where(
      and(
        inArray(dynoUsage.accountId, accountIds),
        eq(dynoUsage.size, ECO_SIZE),
        sql`${dynoUsage.startedAt} < ${now}`,
        or(isNull(dynoUsage.endedAt), gt(dynoUsage.endedAt, from)),
      ),
    )
    .groupBy(dynoUsage.accountId, dynoUsage.appId);
  for (const r of rows) {
    const usage = result.get(r.accountId)!;
    const s = Math.max(0, Number(r.seconds));
    usage.apps.set(r.appId, s);
    usage.used += s;
  }
  return result;
}

/** The quota an account sees (`GET /accounts/{id}/actions/get-quota`), all in whole seconds. */
export interface EcoQuota {
  account_quota: number;
  quota_used: number;
  apps: Array<{ app_uuid: string; quota_used: number }>;
}

/**
 * The account's pool and what it used this month. `quota_used` never shows more than the
 * pool: usage past it (at most one scheduled run's worth) is still recorded, but the pool
 * is simply gone, and the CLI would print negative hours.
 */
export async function ecoQuota(
  db: Database,
  env: Pick<Bindings, "ECO_DYNO_HOURS" | "ECO_DYNO_HOURS_VERIFIED">,
  account: AccountRow,
  now: Date,
): Promise<EcoQuota> {
  const pool = ecoPoolSeconds(env, account);
  const usage = (await ecoUsage(db, [account.id], now)).get(account.id)!;
  return {
    account_quota: pool,
    quota_used: Math.min(pool, Math.floor(usage.used)),
    apps: [...usage.apps].map(([app_uuid, used]) => ({ app_uuid, quota_used: Math.floor(used) })),
  };
}

/** Whether the account's eco dynos are asleep for want of hours (until the next month). */
export const ecoExhausted = (account: Pick<AccountRow, "ecoExhaustedUntil">, now: Date) => !!account.ecoExhaustedUntil && account.ecoExhaustedUntil > now;

/** The line an app's log gets when its account's eco hours run out. */
export { exhaustedLine };

/**
 * The scheduled quota check. Accounts whose eco dynos are up and whose pool is spent get
 * `eco_exhausted_until` (the next month): their eco dynos go to sleep, eco one-off dynos
 * end, each app's log says why, and the router answers H82 until then. Dynos an exhausted
 * account started anyway (a deploy, a restart) are put back to sleep. At the new month the
 * mark is cleared and the next request wakes an app. Idempotent.
 */
export async function enforceEcoQuotas(run: ServiceContext, now: Date): Promise<{ exhausted_accounts: number; slept_dynos: number; renewed_accounts: number }> {
  const db = run.db;
  const renewed = await db
    .update(accounts)
    .set({ ecoExhaustedUntil: null })
    .where(and(isNotNull(accounts.ecoExhaustedUntil), lte(accounts.ecoExhaustedUntil, now)))
    .returning({ id: accounts.id });

  // Accounts with an eco dyno up right now, and not yet marked.
  const active = await db
    .selectDistinct({ id: accounts.id, verified: accounts.verified })
    .from(dynoUsage)
    .innerJoin(accounts, eq(accounts.id, dynoUsage.accountId))
    .where(and(isNull(dynoUsage.endedAt), eq(dynoUsage.size, ECO_SIZE), or(isNull(accounts.ecoExhaustedUntil), lte(accounts.ecoExhaustedUntil, now))));
  const usage = await ecoUsage(
    db,
    active.map((a) => a.id),
    now,
  );
  const spent = active.filter((a) => usage.get(a.id)!.used >= ecoPoolSeconds(run.env, a));
  const until = nextMonthStart(now);
  if (spent.length) {
    await db
      .update(accounts)
      .set({ ecoExhaustedUntil: until })
      .where(
        inArray(
          accounts.id,
          spent.map((a) => a.id),
        ),
      );
  }

  // Every eco dyno of a marked account that is meant to run: the newly spent, and any started since.
  const running = await db
    .select({
      id: dynos.id,
      appId: dynos.appId,
      appName: apps.name,
      name: dynos.name,
      type: dynos.type,
      hostId: dynos.hostId,
      until: accounts.ecoExhaustedUntil,
    })
    .from(dynos)
    .innerJoin(apps, eq(apps.id, dynos.appId))
    .innerJoin(accounts, eq(accounts.id, apps.ownerId))
    .where(and(eq(dynos.size, ECO_SIZE), eq(dynos.desired, "up"), gt(accounts.ecoExhaustedUntil, now)));
  if (running.length) {
    await db.transaction(async (tx) => {
      const oneOffs = running.filter((d) => isOneOffType(d.type)).map((d) => d.id);
      const others = running.filter((d) => !isOneOffType(d.type)).map((d) => d.id);
      if (oneOffs.length) await tx.update(dynos).set({ desired: "stopped", updatedAt: sql`now()` }).where(inArray(dynos.id, oneOffs));
      if (others.length) {
        await tx
          .update(dynos)
          .set({ desired: "sleeping", state: "idle", port: null, stateChangedAt: sql`dynoplane_clock()`, updatedAt: sql`now()` })
          .where(inArray(dynos.id, others));
      }
      // Each app's log says why, from its event (the hosts are told by it too).
      for (const appId of new Set(running.map((d) => d.appId))) {
        const mine = running.filter((d) => d.appId === appId);
        await emit(
          tx,
          { actor: null },
          {
            type: "eco.exhausted",
            app: { id: appId, name: mine[0]!.appName },
            data: { dynos: mine.map((d) => d.name), until: mine[0]!.until!.toISOString() },
            dynos: { start: [], stop: mine.map((d) => ({ dynoId: d.id, hostId: d.hostId })) },
          },
        );
      }
    });
  }
  return { exhausted_accounts: spent.length, slept_dynos: running.length, renewed_accounts: renewed.length };
}
