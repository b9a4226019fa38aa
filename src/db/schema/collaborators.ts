import { index, pgTable, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * Accounts the owner let into an app (`heroku access:add`): they deploy, scale, read and set
 * config and read logs; deleting or renaming the app and managing its collaborators stay
 * with the owner (apps.owner_id, never a row here).
 */
export const collaborators = pgTable(
  "collaborators",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    ...timestamps,
  },
  (t) => [uniqueIndex("collaborators_app_account_key").on(t.appId, t.accountId), index("collaborators_account_idx").on(t.accountId)],
);

export type CollaboratorRow = typeof collaborators.$inferSelect;
