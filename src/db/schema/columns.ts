import { timestamp, uuid } from "drizzle-orm/pg-core";

/** A random UUID primary key, as every Platform API resource has. */
export const idColumn = () => uuid("id").primaryKey().defaultRandom();

/** created_at / updated_at, both set by the database on insert. */
export const timestamps = {
  createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
};
