import { boolean, bigint, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import type { BuildpackRef } from "./builds.ts";
import { idColumn, timestamps } from "./columns.ts";

/** Applications. Names are globally unique; `releaseSeq` hands out release versions under a row lock. */
export const apps = pgTable(
  "apps",
  {
    id: idColumn(),
    name: text("name").notNull(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    region: text("region").notNull().default("us"),
    stack: text("stack").notNull().default("heroku-24"),
    buildStack: text("build_stack").notNull().default("heroku-24"),
    maintenance: boolean("maintenance").notNull().default(false),
    processTier: text("process_tier").notNull().default("eco"),
    repoSize: bigint("repo_size", { mode: "number" }),
    slugSize: bigint("slug_size", { mode: "number" }),
    releaseSeq: integer("release_seq").notNull().default(0),
    releasedAt: timestamp("released_at", { withTimezone: true, mode: "date" }),
    /** Last routed request (written at most once a minute per Worker instance); eco apps sleep after 30 idle minutes. */
    lastRequestAt: timestamp("last_request_at", { withTimezone: true, mode: "date" }),
    /** The commit `git push` last deployed: what `refs/heads/main` and `master` advertise. */
    repoHead: text("repo_head"),
    /** Buildpack installations, in order; empty means detect among the built-in ones. */
    buildpacks: jsonb("buildpacks").$type<BuildpackRef[]>().notNull().default([]),
    ...timestamps,
  },
  (t) => [uniqueIndex("apps_name_key").on(t.name), index("apps_owner_idx").on(t.ownerId)],
);

export type AppRow = typeof apps.$inferSelect;
