import { pgTable, primaryKey, text, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";

/** The app's current config vars; every change also snapshots them into a release. */
export const configVars = pgTable(
  "config_vars",
  {
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    key: text("key").notNull(),
    value: text("value").notNull(),
  },
  (t) => [primaryKey({ columns: [t.appId, t.key], name: "config_vars_pkey" })],
);
