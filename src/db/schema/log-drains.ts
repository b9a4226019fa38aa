import { index, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * HTTPS endpoints that receive a copy of every line of an app's log (Heroku's log drains).
 * This table is the truth; the app's LogChannel holds a copy of the list, with each
 * drain's delivery cursor, and is sent the whole list after every change.
 */
export const logDrains = pgTable(
  "log_drains",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    /** `d.<uuid>`, sent as Logplex-Drain-Token so a receiver can tell drains apart. */
    token: text("token").notNull(),
    ...timestamps,
  },
  (t) => [uniqueIndex("log_drains_app_url_key").on(t.appId, t.url), uniqueIndex("log_drains_token_key").on(t.token), index("log_drains_app_idx").on(t.appId)],
);

export type LogDrainRow = typeof logDrains.$inferSelect;
