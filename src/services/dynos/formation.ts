import { checkFormationLimits } from "../access/account-limits.ts";
import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, formations, type AppRow, type FormationRow } from "../../db/schema/index.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { DYNO_SIZES, isOneOffType } from "../../protocol/host.ts";
import { toFormationJson } from "../../serializers/formation.ts";
import type { ServiceContext } from "../context.ts";
import { syncDynos, type DynoChanges } from "./dynos.ts";
import { emit } from "../events/outbox.ts";
import { placeDynos } from "./placement.ts";

export const MAX_QUANTITY = 100;

const SIZE_ALIASES: Record<string, string> = { free: "Eco", hobby: "Basic", "1x": "Standard-1X", "2x": "Standard-2X", standard: "Standard-1X" };

/** Heroku's size names, case-insensitive, with the old names as aliases. */
export function normalizeSize(size: string): string {
  const lower = size.toLowerCase();
  const known = Object.keys(DYNO_SIZES).find((s) => s.toLowerCase() === lower) ?? SIZE_ALIASES[lower];
  if (!known) throw invalidParams(`Size ${size} is not available. Choose one of: ${Object.keys(DYNO_SIZES).join(", ")}.`);
  return known;
}

/** An absolute quantity from `"2"`, `2`, `"+1"` or `"-1"`. Pure. */
export function resolveQuantity(current: number, quantity: string | number): number {
  // Only strings (what the CLI sends) are relative; a JSON number is the quantity itself, so -1 is refused.
  const text = typeof quantity === "number" && quantity < 0 ? "" : String(quantity).trim();
  const m = /^([+-]?)(\d{1,4})$/.exec(text);
  if (!m) throw invalidParams(`Invalid quantity ${JSON.stringify(quantity)}: use a whole number, or +N / -N.`);
  const n = Number(m[2]);
  const next = m[1] === "+" ? current + n : m[1] === "-" ? current - n : n;
  if (next < 0) throw invalidParams(`Cannot scale below 0 dynos.`);
  if (next > MAX_QUANTITY) throw invalidParams(`Cannot scale above ${MAX_QUANTITY} dynos per process type.`);
  return next;
}

export async function listFormation(db: Database, appId: string): Promise<FormationRow[]> {
  return db.select().from(formations).where(eq(formations.appId, appId)).orderBy(formations.type);
}

export async function getFormation(db: Database, appId: string, type: string): Promise<FormationRow> {
  const [row] = await db
    .select()
    .from(formations)
    .where(and(eq(formations.appId, appId), eq(formations.type, type)));
  if (!row) throw new ApiError("not_found", `Couldn't find that process type (${type}).`, "formation");
  return row;
}

export interface FormationUpdate {
  type: string;
  quantity?: string | number;
  size?: string;
}

/**
 * Scales and resizes process types in one transaction, then brings the dynos in line; its
 * `formation.scaled` event tells the hosts and says `Scaled to web@2:Basic by user ...` in
 * the app's log. An unknown type fails the whole batch, as on Heroku.
 */
export async function updateFormation(ctx: ServiceContext, app: AppRow, updates: FormationUpdate[]): Promise<{ formation: FormationRow[]; summary: string }> {
  return ctx.db.transaction(async (tx) => {
    await tx.select({ id: apps.id }).from(apps).where(eq(apps.id, app.id)).for("update");
    const rows: FormationRow[] = [];
    for (const u of updates) {
      const current = await getFormation(tx, app.id, u.type);
      const quantity = u.quantity === undefined ? current.quantity : resolveQuantity(current.quantity, u.quantity);
      const size = u.size === undefined ? current.size : normalizeSize(u.size);
      const [row] = await tx.update(formations).set({ quantity, size, updatedAt: sql`now()` }).where(eq(formations.id, current.id)).returning();
      rows.push(row!);
    }
    checkTierRules(await listFormation(tx, app.id));
    await refreshProcessTier(tx, app.id);
    const changes = await syncDynos(tx, app);
    await checkFormationLimits(tx, ctx.env, app);
    await placeDynos(tx);
    const summary = rows.map((r) => `${r.type}@${r.quantity}:${r.size}`).join(", ");
    const webhooks = rows.map((r) => ({ include: "api:formation" as const, action: "update" as const, data: toFormationJson(r, app) }));
    await emit(tx, ctx, { type: "formation.scaled", app, data: { summary }, webhooks, dynos: changes });
    return { formation: rows, summary };
  });
}

/** The sizes that run one dyno per process type, and only alongside their own kind (Heroku's Eco and Basic). */
const SINGLE_DYNO_SIZES = ["Eco", "Basic"];

/**
 * Heroku's rules for its smallest tiers, over the formation as it would be: an Eco or Basic
 * process type runs at most one dyno, and an app running Eco (or Basic) dynos runs only
 * those. Throws `invalid_params` with Heroku's wording; pure.
 */
export function checkTierRules(formation: Pick<FormationRow, "type" | "quantity" | "size">[]): void {
  const running = formation.filter((f) => f.quantity > 0);
  for (const f of running) {
    if (SINGLE_DYNO_SIZES.includes(f.size) && f.quantity > 1) {
      throw invalidParams(`Cannot update to more than 1 ${f.size} size dynos per process type.`);
    }
  }
  for (const tier of SINGLE_DYNO_SIZES) {
    const own = running.filter((f) => f.size === tier);
    const other = running.find((f) => f.size !== tier);
    if (own.length && other) {
      throw invalidParams(
        `Cannot mix ${tier} dynos with other sizes in one app (${own[0]!.type} is ${tier}, ${other.type} is ${other.size}). ` +
          `Change every process type together, e.g. heroku ps:type ${other.size.toLowerCase()}.`,
      );
    }
  }
}

/** `eco` when every process type runs on Eco dynos (the CLI then shows the eco-hours quota). */
export async function refreshProcessTier(tx: Database, appId: string) {
  const rows = await listFormation(tx, appId);
  const tier = rows.some((r) => r.quantity > 0 && !DYNO_SIZES[r.size]?.eco) ? "production" : "eco";
  await tx.update(apps).set({ processTier: tier }).where(eq(apps.id, appId));
}

/**
 * Aligns the formation with a new slug's process types: new types appear (web at 1 the
 * first time, others at 0) in the size the app already runs (Eco at first), commands follow
 * the slug, and vanished types go away.
 */
export async function applyProcessTypes(tx: Database, appId: string, processTypes: Record<string, string>): Promise<void> {
  const existing = await listFormation(tx, appId);
  const size = (existing.find((f) => f.type === "web") ?? existing[0])?.size ?? "Eco";
  for (const [type, command] of Object.entries(processTypes)) {
    // The release phase runs once per release (release-phase.ts); it is never scaled.
    if (isOneOffType(type)) continue;
    const row = existing.find((f) => f.type === type);
    if (row) await tx.update(formations).set({ command, updatedAt: sql`now()` }).where(eq(formations.id, row.id));
    else await tx.insert(formations).values({ appId, type, command, quantity: type === "web" ? 1 : 0, size });
  }
  for (const row of existing) if (!(row.type in processTypes) || isOneOffType(row.type)) await tx.delete(formations).where(eq(formations.id, row.id));
}

export type { DynoChanges };
