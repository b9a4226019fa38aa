import { boolean, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { idColumn, timestamps } from "./columns.ts";

/** People who sign in. Emails are stored lower-cased; passwords only as PBKDF2 hashes. */
export const accounts = pgTable(
  "accounts",
  {
    id: idColumn(),
    email: text("email").notNull(),
    name: text("name"),
    passwordHash: text("password_hash").notNull(),
    verified: boolean("verified").notNull().default(false),
    /** Runs the platform: sees the fleet on the dashboard's operator page (`dynoplane accounts:operator`). */
    operator: boolean("operator").notNull().default(false),
    lastLoginAt: timestamp("last_login_at", { withTimezone: true, mode: "date" }),
    /** Set when the account's eco dyno hours ran out: its eco dynos sleep until then (the next month). */
    ecoExhaustedUntil: timestamp("eco_exhausted_until", { withTimezone: true, mode: "date" }),
    ...timestamps,
  },
  (t) => [uniqueIndex("accounts_email_key").on(t.email)],
);

export type AccountRow = typeof accounts.$inferSelect;
