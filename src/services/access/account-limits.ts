import { and, eq, inArray, isNull, ne, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { accountLimits, accounts, addons, apps, dynos, formations, hosts } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { invalidParams } from "../../errors.ts";
import { memoryOf } from "../dynos/placement.ts";

/** What one account may hold at once. */
export interface AccountLimits {
  apps: number;
  addons: number;
  /** One-off dynos running at once, across its apps. */
  oneOffDynos: number;
  /** Dynos of one app, its formation's and its one-off dynos together. */
  dynosPerApp: number;
  /** The share (0 to 1) of the fleet's dyno memory its apps' dynos may commit at once. */
  memoryShare: number;
}

/**
 * The platform's defaults: Heroku's 100 apps per account and 100 dynos per app; ten one-off
 * dynos at once and thirty add-ons (Heroku publishes no figure a self-hosted fleet could
 * follow); and at most half of the fleet's memory for one account, so no account can take
 * the room another's dynos need.
 */
export const DEFAULT_LIMITS: AccountLimits = { apps: 100, addons: 30, oneOffDynos: 10, dynosPerApp: 100, memoryShare: 0.5 };

/** The Worker's variables that change the defaults. */
export type LimitVars = Pick<
  Bindings,
  "ACCOUNT_LIMIT_APPS" | "ACCOUNT_LIMIT_ADDONS" | "ACCOUNT_LIMIT_ONE_OFF_DYNOS" | "ACCOUNT_LIMIT_DYNOS_PER_APP" | "ACCOUNT_LIMIT_MEMORY_SHARE"
>;

const count = (v: string | undefined, fallback: number) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : fallback);
const share = (v: string | undefined, fallback: number) => {
  const n = Number(v);
  return v !== undefined && v.trim() !== "" && Number.isFinite(n) && n > 0 && n <= 1 ? n : fallback;
};

/** The platform's limits from its variables (a malformed one keeps the default). Pure. */
export function platformLimits(vars: Partial<LimitVars>): AccountLimits {
  return {
    apps: count(vars.ACCOUNT_LIMIT_APPS, DEFAULT_LIMITS.apps),
    addons: count(vars.ACCOUNT_LIMIT_ADDONS, DEFAULT_LIMITS.addons),
    oneOffDynos: count(vars.ACCOUNT_LIMIT_ONE_OFF_DYNOS, DEFAULT_LIMITS.oneOffDynos),
    dynosPerApp: count(vars.ACCOUNT_LIMIT_DYNOS_PER_APP, DEFAULT_LIMITS.dynosPerApp),
    memoryShare: share(vars.ACCOUNT_LIMIT_MEMORY_SHARE, DEFAULT_LIMITS.memoryShare),
  };
}

/** An account's limits: the platform's, with the operator's own for it where set. */
export async function limitsOf(db: Database, vars: Partial<LimitVars>, accountId: string): Promise<AccountLimits> {
  const base = platformLimits(vars);
  const [own] = await db.select().from(accountLimits).where(eq(accountLimits.accountId, accountId)).limit(1);
  return {
    apps: own?.apps ?? base.apps,
    addons: own?.addons ?? base.addons,
    oneOffDynos: own?.oneOffDynos ?? base.oneOffDynos,
    dynosPerApp: own?.dynosPerApp ?? base.dynosPerApp,
    memoryShare: own?.memoryShare ?? base.memoryShare,
  };
}

/**
 * Holds the account's row until the transaction ends, so that two changes counting against
 * one limit at once take turns (each then counts what the other committed).
 */
async function lockAccount(db: Database, accountId: string): Promise<void> {
  await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, accountId)).for("update");
}

const ask = "or ask the platform's operator to raise the limit (dynoplane accounts:limits)";

/** Before an app is made for `accountId` (its owner), in that transaction: refused at the account's limit. */
export async function checkAppLimit(db: Database, vars: Partial<LimitVars>, accountId: string): Promise<void> {
  await lockAccount(db, accountId);
  const { apps: max } = await limitsOf(db, vars, accountId);
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(apps).where(eq(apps.ownerId, accountId));
  if ((row?.n ?? 0) >= max) throw invalidParams(`You've reached the limit of ${max} apps for this account. Delete an app first, ${ask}.`);
}

/** Before an add-on is made on one of `accountId`'s apps, in that transaction. */
export async function checkAddonLimit(db: Database, vars: Partial<LimitVars>, accountId: string): Promise<void> {
  await lockAccount(db, accountId);
  const { addons: max } = await limitsOf(db, vars, accountId);
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(addons).innerJoin(apps, eq(apps.id, addons.appId)).where(eq(apps.ownerId, accountId));
  if ((row?.n ?? 0) >= max) throw invalidParams(`You've reached the limit of ${max} add-ons for this account. Remove an add-on first, ${ask}.`);
}

/** Dynos that hold memory: every row but those stopped or asleep. */
const committed = and(ne(dynos.desired, "stopped"), ne(dynos.desired, "sleeping"));

/**
 * After a one-off dyno of `app` was added (inside that transaction): its owner's running
 * one-off dynos, the app's dynos and the owner's share of memory must still be within its
 * limits, else the whole change is refused.
 */
export async function checkOneOffLimits(db: Database, vars: Partial<LimitVars>, app: { id: string; ownerId: string }): Promise<void> {
  await lockAccount(db, app.ownerId);
  const limits = await limitsOf(db, vars, app.ownerId);
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(dynos)
    .innerJoin(apps, eq(apps.id, dynos.appId))
    .where(and(eq(apps.ownerId, app.ownerId), eq(dynos.type, "run"), committed));
  if ((row?.n ?? 0) > limits.oneOffDynos) {
    throw invalidParams(`Cannot run more than ${limits.oneOffDynos} one-off dynos at once on this account. Stop one first (heroku ps:stop run.N), ${ask}.`);
  }
  await checkAppDynos(db, limits, app);
  await checkMemoryShare(db, limits, app.ownerId);
}

/** After a formation change of `app` (inside that transaction, its dynos synced): the app's dynos and its owner's memory share. */
export async function checkFormationLimits(db: Database, vars: Partial<LimitVars>, app: { id: string; ownerId: string }): Promise<void> {
  await lockAccount(db, app.ownerId);
  const limits = await limitsOf(db, vars, app.ownerId);
  const [planned] = await db
    .select({ n: sql<number>`coalesce(sum(${formations.quantity}), 0)::int` })
    .from(formations)
    .where(eq(formations.appId, app.id));
  if ((planned?.n ?? 0) > limits.dynosPerApp) {
    throw invalidParams(`Cannot scale to more than ${limits.dynosPerApp} dynos on one app. Scale another process type down first, ${ask}.`);
  }
  await checkAppDynos(db, limits, app);
  await checkMemoryShare(db, limits, app.ownerId);
}

async function checkAppDynos(db: Database, limits: AccountLimits, app: { id: string }): Promise<void> {
  const [row] = await db
    .select({ n: sql<number>`count(distinct ${dynos.name})::int` })
    .from(dynos)
    .where(and(eq(dynos.appId, app.id), committed));
  if ((row?.n ?? 0) > limits.dynosPerApp) throw invalidParams(`Cannot run more than ${limits.dynosPerApp} dynos on one app; ${ask.replace(/^or /, "")}.`);
}

/**
 * The memory the account's dynos commit against its share of the fleet's (hosts up and not
 * draining). Dynos placed or waiting count alike: an account at its share waits for nobody,
 * and nobody waits for it. No fleet yet: nothing to share, nothing refused.
 */
async function checkMemoryShare(db: Database, limits: AccountLimits, accountId: string): Promise<void> {
  const [fleet] = await db
    .select({ mb: sql<number>`coalesce(sum(${hosts.capacityMb}), 0)::bigint` })
    .from(hosts)
    .where(and(eq(hosts.state, "up"), isNull(hosts.drainingSince)));
  const capacity = Number(fleet?.mb ?? 0);
  if (!capacity) return;
  const owned = db.select({ id: apps.id }).from(apps).where(eq(apps.ownerId, accountId));
  const sizes = await db
    // A dyno being replaced (a release rolling through) counts once.
    .select({ size: dynos.size, n: sql<number>`count(distinct (${dynos.appId}, ${dynos.name}))::int` })
    .from(dynos)
    .where(and(inArray(dynos.appId, owned), committed))
    .groupBy(dynos.size);
  const used = sizes.reduce((sum, s) => sum + s.n * memoryOf(s.size), 0);
  const allowed = Math.floor(capacity * limits.memoryShare);
  if (used > allowed) {
    throw invalidParams(
      `This would commit ${used} MB of dyno memory to this account's apps, more than its ${allowed} MB (${Math.round(limits.memoryShare * 100)}% of the platform's ${capacity} MB). Scale something down or stop a one-off dyno first, ${ask}.`,
    );
  }
}

/** What `dynoplane accounts:limits` changes: a number sets a limit, null goes back to the platform's. */
export type LimitChanges = Partial<Record<keyof AccountLimits, number | null>>;

/** Sets an account's own limits (an operator's command). */
export async function setAccountLimits(db: Database, accountId: string, changes: LimitChanges): Promise<void> {
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined) continue;
    const ok = key === "memoryShare" ? value > 0 && value <= 1 : Number.isInteger(value) && value >= 0;
    if (!ok) throw invalidParams(key === "memoryShare" ? "A memory share is a fraction above 0 and at most 1." : `${key} must be a whole number, 0 or more.`);
  }
  await db
    .insert(accountLimits)
    .values({ accountId, ...changes })
    .onConflictDoUpdate({ target: accountLimits.accountId, set: { ...changes, updatedAt: new Date() } });
}
