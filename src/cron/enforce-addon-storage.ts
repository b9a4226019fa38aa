import { and, asc, eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { type AddonRow, addons, apps } from "../db/schema/index.ts";
import type { Bindings } from "../env.ts";
import { PLANS, POSTGRES } from "../services/addons/catalog.ts";
import { type PostgresProvider, postgresProvider } from "../services/addons/providers/postgres.ts";
import { emit } from "../services/events/outbox.ts";

/** At most this many databases are measured per run (every 10 minutes). */
const BATCH = 500;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function appNameOf(db: Database, appId: string): Promise<string> {
  const [row] = await db.select({ name: apps.name }).from(apps).where(eq(apps.id, appId));
  return row?.name ?? appId;
}

/** What the job needs; tests give their own limits and log. */
export interface StorageJobOptions {
  provider?: PostgresProvider | null;
  /** The byte limit of an add-on (its plan's storage by default). */
  limitBytes?: (addon: AddonRow) => number;
  /** Where a lock or its release is said (by default an `addon.storage_limited` event: the app's log). */
  log?: (appId: string, text: string) => Promise<void>;
}

/**
 * Holds every provisioned Postgres add-on to its plan's storage: one over it has its writes
 * locked until it is back under, and the app's log says so both ways, as `heroku-postgres`.
 */
export async function enforceAddonStorage(
  db: Database,
  env: Bindings,
  o: StorageJobOptions = {},
): Promise<{ checked: number; locked: number; unlocked: number }> {
  const provider = o.provider !== undefined ? o.provider : postgresProvider(env);
  const out = { checked: 0, locked: 0, unlocked: 0 };
  if (!provider?.enforceStorage) return out;
  const limitOf = o.limitBytes ?? ((a: AddonRow) => (PLANS.find((p) => p.name === a.plan)?.storageMb ?? 0) * 1024 * 1024);
  const log = o.log;
  const rows = await db
    .select()
    .from(addons)
    .where(and(eq(addons.service, POSTGRES.name), eq(addons.state, "provisioned")))
    .orderBy(asc(addons.createdAt))
    .limit(BATCH);
  for (const addon of rows) {
    if (!addon.providerId) continue;
    const limit = limitOf(addon);
    try {
      const check = await provider.enforceStorage(addon.providerId, limit);
      out.checked++;
      if (!check.changed) continue;
      if (check.locked) out.locked++;
      else out.unlocked++;
      const text = check.locked
        ? `${addon.name} is over its plan's storage (${mb(check.sizeBytes)} of ${mb(limit)}): writes are refused until it is back under; DELETE and TRUNCATE still work`
        : `${addon.name} is back under its plan's storage (${mb(check.sizeBytes)} of ${mb(limit)}): writes are allowed again`;
      if (log) await log(addon.appId, text);
      else {
        const app = { id: addon.appId, name: await appNameOf(db, addon.appId) };
        await emit(db, { actor: null }, { type: "addon.storage_limited", app, data: { name: addon.name, locked: check.locked, text } });
      }
    } catch (err) {
      console.error(JSON.stringify({ addon_storage_check_failed: String(err), addon: addon.name }));
    }
  }
  return out;
}
