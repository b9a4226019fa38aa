import { bigint, index, jsonb, pgTable, text, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * A built app: a tar.gz in R2 (Heroku's layout, the app under `./app`) plus the
 * process types it declares. `size` and `checksum` are set once the blob is uploaded.
 */
export const slugs = pgTable(
  "slugs",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    blobKey: text("blob_key").notNull(),
    size: bigint("size", { mode: "number" }),
    checksum: text("checksum"),
    processTypes: jsonb("process_types").$type<Record<string, string>>().notNull().default({}),
    stack: text("stack").notNull().default("heroku-24"),
    commit: text("commit"),
    commitDescription: text("commit_description"),
    buildpackProvidedDescription: text("buildpack_provided_description"),
    ...timestamps,
  },
  (t) => [index("slugs_app_idx").on(t.appId)],
);

export type SlugRow = typeof slugs.$inferSelect;
