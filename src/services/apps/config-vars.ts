import { and, eq, inArray } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, configVars, type AppRow, type ReleaseRow } from "../../db/schema/index.ts";
import { invalidParams } from "../../errors.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import type { ChangeBy } from "../events/outbox.ts";
import type { Actor } from "../../env.ts";
import { cutRelease } from "./releases.ts";

/** Heroku's limit on the total size of an app's config (keys plus values). */
export const CONFIG_LIMIT_BYTES = 32 * 1024;
/** A portable environment variable name. */
export const CONFIG_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type ConfigPatch = Record<string, string | null>;

/** The app's config vars as one object. */
export async function getConfigVars(db: Database, appId: string): Promise<Record<string, string>> {
  const rows = await db.select({ key: configVars.key, value: configVars.value }).from(configVars).where(eq(configVars.appId, appId));
  return Object.fromEntries(rows.sort((a, b) => (a.key < b.key ? -1 : 1)).map((r) => [r.key, r.value]));
}

export function configSize(config: Record<string, string>): number {
  const enc = new TextEncoder();
  return Object.entries(config).reduce((n, [k, v]) => n + enc.encode(k).length + enc.encode(v).length, 0);
}

/** The pure part of a config change: validates `patch` and returns the new config plus what changed. */
export function applyConfigPatch(current: Record<string, string>, patch: ConfigPatch) {
  const next = { ...current };
  const set: string[] = [];
  const removed: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (!CONFIG_KEY_RE.test(key)) {
      throw invalidParams(`Invalid config var name ${JSON.stringify(key)}: use letters, digits and underscores, not starting with a digit.`);
    }
    if (value === null) {
      if (key in next) {
        delete next[key];
        removed.push(key);
      }
    } else if (typeof value !== "string") {
      throw invalidParams(`Config var ${key} must be a string or null.`);
    } else if (value.includes("\u0000")) {
      // No environment can hold a NUL, and Postgres text and jsonb refuse it.
      throw invalidParams(`Config var ${key} must not contain a NUL character.`);
    } else if (next[key] !== value) {
      next[key] = value;
      set.push(key);
    }
  }
  const size = configSize(next);
  if (size > CONFIG_LIMIT_BYTES) throw invalidParams(`Config vars may total at most 32 kB; these would total ${size} bytes.`);
  return { next, set, removed };
}

/** The release description Heroku writes for a config change. */
export function describeConfigChange(set: string[], removed: string[]): string {
  const parts: string[] = [];
  if (set.length) parts.push(`Set ${set.join(", ")} config vars`);
  if (removed.length) parts.push(`Remove ${removed.join(", ")} config vars`);
  return parts.join(" and ");
}

/**
 * Applies a config patch (null removes a key) and cuts a release in the same transaction;
 * the app's dynos then restart on it. The app row is locked first so concurrent patches serialize.
 */
export async function setConfigVars(
  ctx: ServiceContext,
  app: AppRow,
  patch: ConfigPatch,
): Promise<{ config: Record<string, string>; release: ReleaseRow | null }> {
  const actor = actingUser(ctx);
  return ctx.db.transaction((tx) => changeConfigIn(tx, { actor, requestId: ctx.requestId }, app, patch));
}

/**
 * Applies a config patch inside the caller's transaction: the app's config vars change, a
 * release records them (with `description`, else Heroku's "Set X config vars"), and the
 * app's dynos get new instances. A patch that changes nothing cuts no release.
 */
export async function changeConfigIn(
  tx: Database,
  by: ChangeBy & { actor: Pick<Actor, "accountId" | "email"> },
  app: AppRow,
  patch: ConfigPatch,
  o: { description?: string } = {},
): Promise<{ config: Record<string, string>; release: ReleaseRow | null }> {
  await tx.select({ id: apps.id }).from(apps).where(eq(apps.id, app.id)).for("update");
  const { next, set, removed } = applyConfigPatch(await getConfigVars(tx, app.id), patch);
  if (!set.length && !removed.length) return { config: next, release: null };
  if (removed.length) await tx.delete(configVars).where(and(eq(configVars.appId, app.id), inArray(configVars.key, removed)));
  for (const key of set) {
    await tx
      .insert(configVars)
      .values({ appId: app.id, key, value: next[key]! })
      .onConflictDoUpdate({ target: [configVars.appId, configVars.key], set: { value: next[key]! } });
  }
  // Dynos restart on the new config, as on Heroku.
  const release = await cutRelease(tx, app, by, {
    description: o.description ?? describeConfigChange(set, removed),
    config: next,
    cause: "config",
    details: { set, removed },
    dynos: "sync",
  });
  return { config: next, release };
}
