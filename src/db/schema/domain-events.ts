import { sql } from "drizzle-orm";
import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * The outbox: what changed, written in the transaction of the change (src/services/events/).
 * A row is undispatched until the dispatcher has carried out its effects outside the
 * database (log lines, webhook deliveries, chart events, dyno commands, the fleet watch);
 * a dispatcher that dies mid-way leaves its claim to expire and another one finishes it.
 * `app_id` is no foreign key: an app's last events outlive it.
 */
export const domainEvents = pgTable(
  "domain_events",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    type: text("type").notNull(),
    appId: uuid("app_id"),
    data: jsonb("data").$type<Record<string, unknown>>().notNull(),
    actorEmail: text("actor_email"),
    /** Dynos the change starts or stops, for their hosts to be told. */
    dynos: jsonb("dynos").$type<{ start: string[]; stop: Array<{ dynoId: string; hostId: string | null }> }>(),
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true, mode: "date" }).notNull().defaultNow(),
    /** A dispatcher holds the row until then; past it, another may take it. */
    claimedUntil: timestamp("claimed_until", { withTimezone: true, mode: "date" }),
    attempts: integer("attempts").notNull().default(0),
    dispatchedAt: timestamp("dispatched_at", { withTimezone: true, mode: "date" }),
    /** Why the effects were given up on, after the last attempt. */
    error: text("error"),
  },
  (t) => [index("domain_events_pending_idx").on(t.id).where(sql`${t.dispatchedAt} is null`), index("domain_events_app_idx").on(t.appId, t.id)],
);

export type DomainEventRow = typeof domainEvents.$inferSelect;
