import { integer, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/** How many dynos of each process type an app wants, and of which size (desired state). */
export const formations = pgTable(
  "formations",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    type: text("type").notNull(),
    quantity: integer("quantity").notNull().default(0),
    size: text("size").notNull().default("Eco"),
    command: text("command").notNull(),
    ...timestamps,
  },
  (t) => [uniqueIndex("formations_app_type_key").on(t.appId, t.type)],
);

export type FormationRow = typeof formations.$inferSelect;
