import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { addons } from "./addons.ts";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";
import { hosts } from "./hosts.ts";

/**
 * A backup (`pg_dump` of a database into the blob store), a restore (a backup `pg_restore`d
 * into a database), or a copy (one database's `pg_dump` restored into another: `pg:copy`, and
 * the data of a fork).
 */
export type TransferKind = "backup" | "restore" | "copy";

/** One line of a transfer's log, as `pg:backups:info` prints it. */
export interface TransferLog {
  created_at: string;
  message: string;
}

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

/**
 * A Heroku PGBackups transfer. Its `num` counts an app's transfers of every kind (`b001`,
 * `r002`); the app is the one that owns the database (Heroku's billing app). A backup's dump
 * is in the blob store under `blobKey` until the backup is deleted or expires.
 */
export const pgTransfers = pgTable(
  "pg_transfers",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    num: integer("num").notNull(),
    kind: text("kind").$type<TransferKind>().notNull(),
    /** The database backed up, or restored into; null once that add-on is gone (its backups stay). */
    addonId: uuid("addon_id").references(() => addons.id, { onDelete: "set null" }),
    /** The attachment name a backup was taken from (`DATABASE`), or the add-on restored into. */
    fromName: text("from_name").notNull(),
    toName: text("to_name").notNull(),
    /** A restore's backup. */
    backupId: uuid("backup_id"),
    /** A copy that fills a new add-on (`--fork`): it is attached once the copy succeeded, failed otherwise. */
    forkAddonId: uuid("fork_addon_id").references(() => addons.id, { onDelete: "set null" }),
    /** Who asked for it (the account a fork's attachment and release are made by). */
    accountId: uuid("account_id"),
    /** Taken by a daily schedule (`a001`), not by hand. */
    scheduled: boolean("scheduled").notNull().default(false),
    /** The host running it. */
    hostId: uuid("host_id").references(() => hosts.id, { onDelete: "set null" }),
    blobKey: text("blob_key"),
    /** A backup's dump while it uploads: the blob store's multipart upload and the parts stored so far. */
    uploadId: text("upload_id"),
    uploadedParts: jsonb("uploaded_parts").$type<{ partNumber: number; etag: string }[]>().notNull().default([]),
    /** The database's size when the transfer started. */
    sourceBytes: bigint("source_bytes", { mode: "number" }),
    /** The dump's size. */
    processedBytes: bigint("processed_bytes", { mode: "number" }).notNull().default(0),
    warnings: integer("warnings").notNull().default(0),
    succeeded: boolean("succeeded").notNull().default(false),
    logs: jsonb("logs").$type<TransferLog[]>().notNull().default([]),
    startedAt: at("started_at"),
    finishedAt: at("finished_at"),
    canceledAt: at("canceled_at"),
    /** Deleted (`pg:backups:delete`) or expired: its dump is gone, the row stays out of every list. */
    deletedAt: at("deleted_at"),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("pg_transfers_app_num_key").on(t.appId, t.num),
    index("pg_transfers_addon_idx").on(t.addonId),
    // One restore or copy into a database at a time: they share its fresh database.
    uniqueIndex("pg_transfers_one_restore_key").on(t.addonId).where(sql`${t.kind} <> 'backup' and ${t.finishedAt} is null`),
  ],
);

export type PgTransferRow = typeof pgTransfers.$inferSelect;

/**
 * A database's daily backup (`pg:backups:schedule --at '02:00 Europe/Istanbul'`): one per
 * database, a new one replacing it. Its backups are `a001`-style and kept apart from manual ones.
 */
export const pgBackupSchedules = pgTable(
  "pg_backup_schedules",
  {
    id: idColumn(),
    addonId: uuid("addon_id")
      .notNull()
      .references(() => addons.id, { onDelete: "cascade" }),
    /** The config var it was made for (`DATABASE_URL`), as `pg:backups:schedules` names it. */
    name: text("name").notNull(),
    /** The hour of the day (0–23) in `timezone` it runs at. */
    hour: integer("hour").notNull(),
    /** An IANA time zone (`Europe/Istanbul`, `UTC`). */
    timezone: text("timezone").notNull(),
    /** The day (`YYYY-MM-DD` in `timezone`) it last ran, or was made after its hour: one backup a day. */
    lastDay: text("last_day"),
    ...timestamps,
  },
  (t) => [uniqueIndex("pg_backup_schedules_addon_key").on(t.addonId)],
);

export type PgBackupScheduleRow = typeof pgBackupSchedules.$inferSelect;
