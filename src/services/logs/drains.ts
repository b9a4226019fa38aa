import { and, asc, eq, or } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { logDrains, type AppRow, type LogDrainRow } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { drainUrlProblem } from "../../logs/drain-url.ts";
import { recordAudit } from "../events/audit.ts";
import { logChannel } from "./logs.ts";

/** Drains one app may have. */
export const MAX_DRAINS_PER_APP = 5;

/** An app's drains, oldest first. */
export async function listDrains(db: Database, appId: string): Promise<LogDrainRow[]> {
  return db.select().from(logDrains).where(eq(logDrains.appId, appId)).orderBy(asc(logDrains.createdAt), asc(logDrains.id));
}

/** A drain by id, URL or token, as Heroku's `query_identity` allows. */
export async function getDrain(db: Database, appId: string, identity: string): Promise<LogDrainRow> {
  const which = isUuid(identity) ? eq(logDrains.id, identity) : or(eq(logDrains.url, identity), eq(logDrains.token, identity));
  const [row] = await db
    .select()
    .from(logDrains)
    .where(and(eq(logDrains.appId, appId), which))
    .limit(1);
  if (!row) throw new ApiError("not_found", "Couldn't find that log drain.", "log_drain");
  return row;
}

/** Adds a drain after checking its URL against the platform's rules (see drain-url.ts). */
export async function addDrain(db: Database, env: Bindings, actor: Actor, app: AppRow, url: string, requestId?: string): Promise<LogDrainRow> {
  const problem = drainUrlProblem(url, env);
  if (problem) throw invalidParams(`The drain URL ${problem}.`);
  const row = await db.transaction(async (tx) => {
    const existing = await listDrains(tx, app.id);
    if (existing.some((d) => d.url === url)) throw new ApiError("conflict", "This app already has a drain with that URL.");
    if (existing.length >= MAX_DRAINS_PER_APP) throw invalidParams(`An app may have at most ${MAX_DRAINS_PER_APP} log drains.`);
    const [created] = await tx
      .insert(logDrains)
      .values({ appId: app.id, url, token: `d.${crypto.randomUUID()}` })
      .returning();
    await recordAudit(tx, { actor, action: "log_drain.create", app, details: { drain_id: created!.id }, requestId });
    return created!;
  });
  await syncDrains(db, env, app.id);
  return row;
}

/** Removes a drain; its channel stops sending at once. */
export async function removeDrain(db: Database, env: Bindings, actor: Actor, app: AppRow, identity: string, requestId?: string): Promise<LogDrainRow> {
  const row = await db.transaction(async (tx) => {
    const found = await getDrain(tx, app.id, identity);
    await tx.delete(logDrains).where(eq(logDrains.id, found.id));
    await recordAudit(tx, { actor, action: "log_drain.delete", app, details: { drain_id: found.id }, requestId });
    return found;
  });
  await syncDrains(db, env, app.id);
  return row;
}

/**
 * Sends the app's whole drain list to its log channel. The list is idempotent, so any
 * later change also repairs a channel that missed an earlier one.
 */
export async function syncDrains(db: Database, env: Pick<Bindings, "LOG_CHANNEL">, appId: string): Promise<void> {
  const rows = await listDrains(db, appId);
  await logChannel(env, appId).setDrains(rows.map((r) => ({ id: r.id, url: r.url, token: r.token })));
}
