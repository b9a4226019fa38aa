import { integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Failed sign-ins counted per key (`account:<email>` and `address:<ip>`) in fixed
 * windows. One row per key, so a flood of failures cannot grow the table per attempt.
 * Keys for unknown emails are counted like known ones, so a lockout reveals nothing.
 */
export const signInThrottles = pgTable("sign_in_throttles", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull().default(0),
  windowStartedAt: timestamp("window_started_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
});

/** A row of sign_in_throttles. */
export type SignInThrottleRow = typeof signInThrottles.$inferSelect;
