import { doublePrecision, integer, pgTable, uuid } from "drizzle-orm/pg-core";
import { timestamps } from "./columns.ts";
import { accounts } from "./accounts.ts";

/**
 * An operator's limits for one account (`dynoplane accounts:limits`), each overriding the
 * platform's default (the Worker's `ACCOUNT_LIMIT_*` variables) where it is set.
 */
export const accountLimits = pgTable("account_limits", {
  accountId: uuid("account_id")
    .primaryKey()
    .references(() => accounts.id, { onDelete: "cascade" }),
  apps: integer("apps"),
  addons: integer("addons"),
  oneOffDynos: integer("one_off_dynos"),
  dynosPerApp: integer("dynos_per_app"),
  /** The share (0 to 1) of the fleet's dyno memory its apps' dynos may commit at once. */
  memoryShare: doublePrecision("memory_share"),
  ...timestamps,
});

export type AccountLimitsRow = typeof accountLimits.$inferSelect;
