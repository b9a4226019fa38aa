import { and, asc, eq, isNull, ne, or } from "drizzle-orm";
import { isUuid } from "../../db/paging.ts";
import { type PgBackupScheduleRow, pgBackupSchedules } from "../../db/schema/index.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { type AddonView, addonView, provisioned } from "./addons.ts";
import { attachmentName, herokuTime } from "./transfers.ts";
import { startBackup } from "./backups.ts";

/**
 * Daily backups (`pg:backups:schedule`): one schedule per database, taken by the scheduled
 * run at its hour in its time zone.
 */

/** The day (`YYYY-MM-DD`) and hour (0–23) it is in `timeZone` at `at`. */
export function localTime(timeZone: string, at: Date): { day: string; hour: number } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)!.value;
  return { day: `${part("year")}-${part("month")}-${part("day")}`, hour: Number(part("hour")) };
}

/** Whether `timeZone` is one the runtime knows (an IANA name such as `Europe/Istanbul`, or `UTC`). */
export function knownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** A schedule as `pg:backups:schedules` reads it. */
export function scheduleJson(s: PgBackupScheduleRow) {
  return { uuid: s.id, name: s.name, hour: s.hour, timezone: s.timezone, days: DAYS, retain_weeks: 0, retain_months: 0, created_at: herokuTime(s.createdAt) };
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/**
 * `pg:backups:schedule --at 'HH:00 TZ'`: the database is backed up daily at that hour (one
 * schedule per database; a new one replaces it). A schedule made after its hour of the day
 * first runs the next day.
 */
export async function scheduleBackups(
  ctx: ServiceContext,
  view: AddonView,
  input: { hour: string | number; timezone?: string; schedule_name?: string },
  now = new Date(),
): Promise<PgBackupScheduleRow> {
  actingUser(ctx);
  provisioned(view);
  const hour = typeof input.hour === "number" ? input.hour : /^\d{1,2}$/.test(input.hour) ? Number(input.hour) : Number.NaN;
  if (!Number.isInteger(hour) || hour < 0 || hour > 23) throw invalidParams("hour must be a whole hour of the day, 0 to 23.");
  const timezone = input.timezone?.trim() || "UTC";
  if (!knownTimeZone(timezone)) throw invalidParams(`Unknown time zone: ${timezone}. Use an IANA name such as Europe/Istanbul or America/New_York.`);
  const name = input.schedule_name?.trim() || `${attachmentName(view)}_URL`;
  if (!/^[A-Z][A-Z0-9_]{0,62}$/.test(name)) throw invalidParams(`Not a config var's name: ${name}.`);
  const local = localTime(timezone, now);
  const values = { addonId: view.addon.id, name, hour, timezone, lastDay: local.hour >= hour ? local.day : null, updatedAt: now };
  const [row] = await ctx.db.insert(pgBackupSchedules).values(values).onConflictDoUpdate({ target: pgBackupSchedules.addonId, set: values }).returning();
  return row!;
}

/** A database's schedules (none or one). */
export function listSchedules(ctx: ServiceContext, view: AddonView): Promise<PgBackupScheduleRow[]> {
  return ctx.db.select().from(pgBackupSchedules).where(eq(pgBackupSchedules.addonId, view.addon.id));
}

/** `pg:backups:unschedule`: the database is no longer backed up daily; its backups stay. */
export async function unscheduleBackups(ctx: ServiceContext, view: AddonView, id: string): Promise<PgBackupScheduleRow> {
  actingUser(ctx);
  const [row] = isUuid(id)
    ? await ctx.db
        .delete(pgBackupSchedules)
        .where(and(eq(pgBackupSchedules.id, id), eq(pgBackupSchedules.addonId, view.addon.id)))
        .returning()
    : [];
  if (!row) throw new ApiError("not_found", `Couldn't find that schedule of ${view.addon.name}.`, "schedule");
  return row;
}

/**
 * The day a schedule's backup is due on at `now`, or null: due once its hour has come in its
 * time zone on a day it has not run yet (a run that missed the hour still takes that day's). Pure.
 */
export function dueDay(s: Pick<PgBackupScheduleRow, "hour" | "timezone" | "lastDay">, now: Date): string | null {
  if (!knownTimeZone(s.timezone)) return null;
  const local = localTime(s.timezone, now);
  return local.hour >= s.hour && s.lastDay !== local.day ? local.day : null;
}

/** Schedules started per run (every 10 minutes); the rest wait for the next run, still within their day. */
const SCHEDULED_PER_RUN = 200;

/**
 * The daily backups that are due: each schedule whose hour has come in its time zone and
 * that has not run that day. A schedule is claimed (its day written) before its backup
 * starts, so runs that repeat or overlap take one backup a day.
 */
export async function runScheduledBackups(ctx: ServiceContext, now: Date): Promise<{ started: number; failed: number }> {
  const out = { started: 0, failed: 0 };
  const rows = await ctx.db.select().from(pgBackupSchedules).orderBy(asc(pgBackupSchedules.lastDay)).limit(5_000);
  for (const s of rows) {
    if (out.started + out.failed >= SCHEDULED_PER_RUN) break;
    const day = dueDay(s, now);
    if (!day) continue;
    const [claimed] = await ctx.db
      .update(pgBackupSchedules)
      .set({ lastDay: day, updatedAt: now })
      .where(and(eq(pgBackupSchedules.id, s.id), or(isNull(pgBackupSchedules.lastDay), ne(pgBackupSchedules.lastDay, day))))
      .returning();
    if (!claimed) continue;
    try {
      const view = await addonView(ctx.db, s.addonId);
      if (view?.addon.state !== "provisioned") continue;
      await startBackup(ctx, view, true);
      out.started++;
    } catch (err) {
      out.failed++;
      console.error(JSON.stringify({ job: "scheduled-backups", schedule: s.id, error: String(err) }));
    }
  }
  return out;
}
