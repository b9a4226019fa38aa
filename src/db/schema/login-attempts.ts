import { index, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { idColumn, timestamps } from "./columns.ts";
import { oauthAuthorizations } from "./oauth-authorizations.ts";

/** pending → approved → redeemed (the CLI got its token), or pending → denied. */
export type LoginAttemptStatus = "pending" | "approved" | "denied" | "redeemed";

/**
 * One `heroku login` in the browser. The CLI holds a poll token (a JWT naming this row,
 * whose jti is stored here only as a SHA-256); the browser holds a different random id,
 * also stored only as a SHA-256, so the browser link alone can never fetch the token.
 */
export const loginAttempts = pgTable(
  "login_attempts",
  {
    id: idColumn(),
    /** SHA-256 of the random id in the browser URL. */
    browserIdHash: text("browser_id_hash").notNull(),
    /** SHA-256 of the poll token's jti: the one token that may collect the result. */
    pollJtiHash: text("poll_jti_hash").notNull(),
    /** The CLI's description, e.g. "Heroku CLI login from laptop"; becomes the token's description. */
    description: text("description").notNull().default(""),
    status: text("status").$type<LoginAttemptStatus>().notNull().default("pending"),
    /** Who approved or denied it. */
    accountId: uuid("account_id").references(() => accounts.id, { onDelete: "cascade" }),
    /** The token issued when the CLI collected an approved attempt. */
    authorizationId: uuid("authorization_id").references(() => oauthAuthorizations.id, { onDelete: "set null" }),
    /** Set when the poll token was first used; a second use is refused. */
    polledAt: timestamp("polled_at", { withTimezone: true, mode: "date" }),
    decidedAt: timestamp("decided_at", { withTimezone: true, mode: "date" }),
    expiresAt: timestamp("expires_at", { withTimezone: true, mode: "date" }).notNull(),
    ...timestamps,
  },
  (t) => [
    uniqueIndex("login_attempts_browser_id_hash_key").on(t.browserIdHash),
    uniqueIndex("login_attempts_poll_jti_hash_key").on(t.pollJtiHash),
    index("login_attempts_expires_idx").on(t.expiresAt),
  ],
);

/** A row of login_attempts. */
export type LoginAttemptRow = typeof loginAttempts.$inferSelect;
