import { bigint, bigserial, boolean, index, integer, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { sql } from "drizzle-orm";
import { accounts } from "./accounts.ts";
import { apps } from "./apps.ts";

/**
 * The dyno state history that metering reads: one row per stretch a dyno was up, opened
 * and closed by a trigger on `dynos` (migration `dyno_usage_trigger`), so every path that
 * starts, stops, sleeps, crashes or deletes a dyno is counted, cascades included. Rows
 * outlive their dyno and app: the hours were spent.
 */
export const dynoUsage = pgTable(
  "dyno_usage",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    appId: uuid("app_id").notNull(),
    dynoId: uuid("dyno_id").notNull(),
    dynoName: text("dyno_name").notNull(),
    size: text("size").notNull(),
    startedAt: timestamp("started_at", { withTimezone: true, mode: "date" }).notNull(),
    /** Null while the dyno is still up. */
    endedAt: timestamp("ended_at", { withTimezone: true, mode: "date" }),
  },
  (t) => [uniqueIndex("dyno_usage_open_key").on(t.dynoId).where(sql`ended_at is null`), index("dyno_usage_account_idx").on(t.accountId, t.startedAt)],
);

/** App features (`heroku features`): which of the platform's features an app has enabled. */
export const appFeatures = pgTable(
  "app_features",
  {
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    enabled: boolean("enabled").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.appId, t.name] }), index("app_features_enabled_idx").on(t.name).where(sql`enabled`)],
);

/** The keep-alive pinger's record and settings for an app. */
export const keepAlive = pgTable("keep_alive", {
  appId: uuid("app_id")
    .primaryKey()
    .references(() => apps.id, { onDelete: "cascade" }),
  /** A fixed bedtime starting at this UTC hour; null: the app's quietest hours. */
  bedtimeStartHour: smallint("bedtime_start_hour"),
  /** The 10-minute slot (epoch seconds / 600) last pinged: a run that repeats a slot pings nothing twice. */
  lastSlot: bigint("last_slot", { mode: "number" }).notNull().default(0),
  lastPingedAt: timestamp("last_pinged_at", { withTimezone: true, mode: "date" }),
  lastStatus: integer("last_status"),
  lastLatencyMs: integer("last_latency_ms"),
  lastError: text("last_error"),
});

/** Routed requests per app and UTC hour of day (keep-alive pings excluded): where an app's quiet hours are. */
export const appTraffic = pgTable(
  "app_traffic",
  {
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    hour: smallint("hour").notNull(),
    requests: bigint("requests", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.appId, t.hour] })],
);

export type DynoUsageRow = typeof dynoUsage.$inferSelect;
export type KeepAliveRow = typeof keepAlive.$inferSelect;
