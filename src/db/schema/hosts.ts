import { bigint, index, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { idColumn, timestamps } from "./columns.ts";

export type HostState = "up" | "down";

/**
 * Machines that run dynos under a host agent. The agent's secret is stored only as a
 * SHA-256; `url` is where the control plane sends signed commands and routed requests.
 */
export const hosts = pgTable(
  "hosts",
  {
    id: idColumn(),
    name: text("name").notNull(),
    secretHash: text("secret_hash").notNull(),
    url: text("url"),
    /** `host:port` of the agent's rendezvous server (`heroku run`), as its heartbeat reports. */
    rendezvous: text("rendezvous"),
    /** The agent process's id for itself (new on every start): a change means it restarted. */
    agentSession: text("agent_session"),
    capacityMb: integer("capacity_mb").notNull().default(0),
    state: text("state").$type<HostState>().notNull().default("down"),
    lastHeartbeatAt: timestamp("last_heartbeat_at", { withTimezone: true, mode: "date" }),
    /**
     * Set by `dynoplane hosts:drain`: the host takes no new dynos, and the fleet watch moves
     * its dynos elsewhere one at a time. Cleared by `hosts:undrain`.
     */
    drainingSince: timestamp("draining_since", { withTimezone: true, mode: "date" }),
    /** The agent's version, as its heartbeat reports it. */
    agentVersion: text("agent_version"),
    /** Lines the agent dropped because a dyno logged faster than it could ship. */
    droppedLogLines: bigint("dropped_log_lines", { mode: "number" }).notNull().default(0),
    ...timestamps,
  },
  (t) => [uniqueIndex("hosts_name_key").on(t.name), uniqueIndex("hosts_secret_hash_key").on(t.secretHash), index("hosts_state_idx").on(t.state)],
);

export type HostRow = typeof hosts.$inferSelect;
