import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { appFeatures, keepAlive, type AppRow } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import type { ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";

/** A feature the platform offers apps (`heroku features`). */
export interface FeatureInfo {
  /** Stable, so `heroku features:info ID` finds it. */
  id: string;
  displayName: string;
  description: string;
  docUrl: string;
  /** `general` (listed by `heroku features`) or `beta` (an experimental one, listed by `heroku labs`). */
  state: "general" | "beta";
}

export const KEEP_ALIVE = "keep-alive";
export const LOG_RUNTIME_METRICS = "log-runtime-metrics";

/** The app features dynoplane has, by name. */
export const APP_FEATURES: Record<string, FeatureInfo> = {
  [KEEP_ALIVE]: {
    id: "6d0f3c2a-8a53-4a4e-9a0e-2f5b3c7d1e90",
    displayName: "Keep-alive",
    description:
      "Ping the app through the router every 10 minutes so its eco dynos stay awake, with a nightly bedtime that keeps the account's eco dyno hours from running out before the month ends",
    docUrl: "https://github.com/dynoplane/dynoplane#eco-dynos-and-keep-alive",
    state: "general",
  },
  [LOG_RUNTIME_METRICS]: {
    id: "3b7e4f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
    displayName: "Log runtime metrics",
    description: "Emit dyno resource usage information (memory and load, every 20 seconds) into app logs",
    docUrl: "https://github.com/dynoplane/dynoplane#metrics",
    state: "beta",
  },
};

/** One feature of one app, as `/apps/{app}/features` shows it. */
export interface AppFeature extends FeatureInfo {
  name: string;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** A feature by name or id; 404 for anything else. */
function findFeature(nameOrId: string): [string, FeatureInfo] {
  const found = Object.entries(APP_FEATURES).find(([name, f]) => name === nameOrId || f.id === nameOrId);
  if (!found) throw new ApiError("not_found", `Couldn't find that feature.`, "app-feature");
  return found;
}

/** Every feature, enabled or not, for an app. */
export async function listAppFeatures(db: Database, app: AppRow): Promise<AppFeature[]> {
  const rows = await db.select().from(appFeatures).where(eq(appFeatures.appId, app.id));
  return Object.entries(APP_FEATURES).map(([name, info]) => {
    const row = rows.find((r) => r.name === name);
    return { ...info, name, enabled: row?.enabled ?? false, createdAt: row?.createdAt ?? app.createdAt, updatedAt: row?.updatedAt ?? app.createdAt };
  });
}

export async function getAppFeature(db: Database, app: AppRow, nameOrId: string): Promise<AppFeature> {
  const [name] = findFeature(nameOrId);
  return (await listAppFeatures(db, app)).find((f) => f.name === name)!;
}

/**
 * Turns a feature on or off for an app (`heroku features:enable keep-alive`). The app's log
 * says who, and the audit records it. Enabling keep-alive gives the app its pinger record.
 */
export async function setAppFeature(ctx: ServiceContext, app: AppRow, nameOrId: string, enabled: boolean): Promise<AppFeature> {
  const [name] = findFeature(nameOrId);
  await ctx.db.transaction(async (tx) => {
    const [before] = await tx
      .select({ enabled: appFeatures.enabled })
      .from(appFeatures)
      .where(and(eq(appFeatures.appId, app.id), eq(appFeatures.name, name)));
    await tx
      .insert(appFeatures)
      .values({ appId: app.id, name, enabled })
      .onConflictDoUpdate({ target: [appFeatures.appId, appFeatures.name], set: { enabled, updatedAt: sql`now()` } });
    if (name === KEEP_ALIVE && enabled) await tx.insert(keepAlive).values({ appId: app.id }).onConflictDoNothing();
    if ((before?.enabled ?? false) !== enabled) await emit(tx, ctx, { type: enabled ? "feature.enabled" : "feature.disabled", app, data: { name } });
  });
  return getAppFeature(ctx.db, app, name);
}
