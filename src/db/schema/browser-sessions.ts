import { index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * Signed-in dashboard browsers. The cookie carries a random secret; only its SHA-256 is
 * stored, so a database leak yields no usable session, and revoking the row ends the
 * session at once (sign out, or signing out everywhere).
 */
export const browserSessions = pgTable(
  "browser_sessions",
  {
    id: idColumn(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    secretHash: text("secret_hash").notNull(),
    userAgent: text("user_agent"),
    clientAddress: text("client_address"),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    ...timestamps,
  },
  (t) => [uniqueIndex("browser_sessions_secret_hash_key").on(t.secretHash), index("browser_sessions_account_idx").on(t.accountId)],
);

/** A row of browser_sessions. */
export type BrowserSessionRow = typeof browserSessions.$inferSelect;
