import { sql } from "drizzle-orm";
import { integer, jsonb, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

export type ReleaseStatus = "pending" | "succeeded" | "failed" | "expired";

/**
 * Immutable records of what an app runs: a slug plus a full snapshot of its config.
 * A rollback is a new release copying an older one's slug and config.
 */
export const releases = pgTable(
  "releases",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    description: text("description").notNull(),
    status: text("status").$type<ReleaseStatus>().notNull().default("succeeded"),
    accountId: uuid("account_id").references(() => accounts.id, { onDelete: "set null" }),
    userEmail: text("user_email").notNull(),
    slugId: uuid("slug_id"),
    config: jsonb("config").$type<Record<string, string>>().notNull().default({}),
    addonPlanNames: text("addon_plan_names").array().notNull().default(sql`'{}'::text[]`),
    ...timestamps,
  },
  (t) => [uniqueIndex("releases_app_version_key").on(t.appId, t.version)],
);

export type ReleaseRow = typeof releases.$inferSelect;
