import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";
import { hosts } from "./hosts.ts";
import { releases } from "./releases.ts";

/** What a dyno should be doing. `stopped` keeps an ended one-off dyno's row; `sleeping` is an idle eco dyno. */
export type DynoDesired = "up" | "stopped" | "sleeping";
/** What the host agent last reported, in Heroku's words. */
export type DynoState = "starting" | "up" | "crashed" | "idle" | "down";

/**
 * One dyno: desired state (release, command, placement, `instance`) next to the state its
 * host reports. A restart is a new `instance`; the agent replaces the process it runs.
 */
export const dynos = pgTable(
  "dynos",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    releaseId: uuid("release_id")
      .notNull()
      .references(() => releases.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    type: text("type").notNull(),
    command: text("command").notNull(),
    size: text("size").notNull(),
    /** Attach data for one-off dynos (`heroku run`), and environment additions. */
    extraEnv: jsonb("extra_env").$type<Record<string, string>>().notNull().default({}),
    hostId: uuid("host_id").references(() => hosts.id, { onDelete: "set null" }),
    instance: uuid("instance").notNull().defaultRandom(),
    /**
     * While a dyno moves off a draining host: the host and instance that keep running until
     * the new instance is up elsewhere (then both are cleared and the old one stops).
     */
    previousHostId: uuid("previous_host_id").references(() => hosts.id, { onDelete: "set null" }),
    previousInstance: uuid("previous_instance"),
    desired: text("desired").$type<DynoDesired>().notNull().default("up"),
    state: text("state").$type<DynoState>().notNull().default("starting"),
    /** Port of the running process on its host (web dynos), as reported. */
    port: integer("port"),
    /** The address it listens on there (its sandbox's own), as reported: where a router on the same machine reaches it. */
    address: text("address"),
    exitCode: integer("exit_code"),
    /** One-off dynos: seconds they may run before they are stopped (`time_to_live`). */
    timeToLiveS: integer("time_to_live_s"),
    /** Attached one-off dynos (`heroku run`): their client's terminal (`tty`) or plain pipes. */
    attach: text("attach").$type<"tty" | "pipes">(),
    stateChangedAt: timestamp("state_changed_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    ...timestamps,
  },
  (t) => [uniqueIndex("dynos_app_name_key").on(t.appId, t.name), index("dynos_host_idx").on(t.hostId)],
);

export type DynoRow = typeof dynos.$inferSelect;
