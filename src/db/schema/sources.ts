import { bigint, index, pgTable, text, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * Source tarballs uploaded through the Sources API (signed PUT into R2), owned by the
 * account that asked for the URLs. Builds may only name sources of their own caller.
 */
export const sources = pgTable(
  "sources",
  {
    id: idColumn(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    blobKey: text("blob_key").notNull(),
    /** Set once the tarball is stored. */
    size: bigint("size", { mode: "number" }),
    checksum: text("checksum"),
    ...timestamps,
  },
  (t) => [index("sources_account_idx").on(t.accountId)],
);

export type SourceRow = typeof sources.$inferSelect;
