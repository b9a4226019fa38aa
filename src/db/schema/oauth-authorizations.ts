import { sql } from "drizzle-orm";
import { boolean, index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { idColumn, timestamps } from "./columns.ts";

/**
 * API tokens. Only the SHA-256 of a token is stored; its first and last characters
 * are kept so lists can show a redacted form (`dpl_abcd**********wxyz`).
 * The default authorization is the account's API key.
 */
export const oauthAuthorizations = pgTable(
  "oauth_authorizations",
  {
    id: idColumn(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    description: text("description").notNull().default(""),
    tokenHash: text("token_hash").notNull(),
    tokenPrefix: text("token_prefix").notNull(),
    tokenSuffix: text("token_suffix").notNull(),
    scope: text("scope").array().notNull().default(sql`'{global}'::text[]`),
    isDefault: boolean("is_default").notNull().default(false),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }),
    revokedAt: timestamp("revoked_at", { withTimezone: true, mode: "date" }),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("oauth_authorizations_token_hash_key").on(t.tokenHash),
    index("oauth_authorizations_account_idx").on(t.accountId),
    // At most one live API key per account.
    uniqueIndex("oauth_authorizations_default_key").on(t.accountId).where(sql`${t.isDefault} and ${t.revokedAt} is null`),
  ],
);

export type OAuthAuthorizationRow = typeof oauthAuthorizations.$inferSelect;
