import { bigint, boolean, integer, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn } from "./columns.ts";

/**
 * The packs pushed to an app's repository, in push order (`seq`), stored in R2. Replaying
 * the accepted ones with `git index-pack --fix-thin` rebuilds every deployed commit. A
 * pack becomes accepted only when its build succeeds, so a pack that `index-pack`
 * rejected is never replayed again.
 */
export const gitPacks = pgTable(
  "git_packs",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    seq: integer("seq").notNull(),
    blobKey: text("blob_key").notNull(),
    /** Null while the upload is in progress. */
    size: bigint("size", { mode: "number" }),
    /** The pack's trailing SHA-1, hex. */
    checksum: text("checksum"),
    /** The commit the push asked to deploy. */
    commit: text("commit").notNull(),
    accepted: boolean("accepted").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex("git_packs_app_seq_key").on(t.appId, t.seq)],
);

export type GitPackRow = typeof gitPacks.$inferSelect;
