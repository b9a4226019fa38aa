import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/** The entities an app webhook may subscribe to (Heroku's `include`). */
export const WEBHOOK_ENTITIES = ["api:app", "api:build", "api:formation", "api:release", "dyno"] as const;
export type WebhookEntity = (typeof WEBHOOK_ENTITIES)[number];

/**
 * HTTPS endpoints notified of changes to an app (`heroku webhooks:add`). The signing secret
 * and the optional Authorization header are kept sealed (AES-GCM under a key derived from
 * the platform's signing key): they are sent with every delivery, so they cannot be hashed.
 */
export const appWebhooks = pgTable(
  "app_webhooks",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    include: text("include").array().$type<WebhookEntity[]>().notNull(),
    /** `notify`: one attempt; `sync`: retried with back-off until it succeeds or a day has passed. */
    level: text("level").$type<"notify" | "sync">().notNull(),
    secretSealed: text("secret_sealed").notNull(),
    authorizationSealed: text("authorization_sealed"),
    ...timestamps,
  },
  (t) => [uniqueIndex("app_webhooks_app_url_key").on(t.appId, t.url)],
);

/** What happened to an app, as its subscribed webhooks are told (Heroku's webhook events). */
export const webhookEvents = pgTable(
  "webhook_events",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    include: text("include").$type<WebhookEntity>().notNull(),
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    ...timestamps,
  },
  (t) => [index("webhook_events_app_idx").on(t.appId, t.createdAt)],
);

export type DeliveryStatus = "pending" | "scheduled" | "retrying" | "failed" | "succeeded";

/** One event sent (or to be sent) to one webhook, with its attempts. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    webhookId: uuid("webhook_id")
      .notNull()
      .references(() => appWebhooks.id, { onDelete: "cascade" }),
    eventId: uuid("event_id")
      .notNull()
      .references(() => webhookEvents.id, { onDelete: "cascade" }),
    status: text("status").$type<DeliveryStatus>().notNull(),
    numAttempts: integer("num_attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true, mode: "date" }),
    /** `{id, code, error_class, status, created_at, updated_at}` of the last attempt. */
    lastAttempt: jsonb("last_attempt").$type<Record<string, unknown> | null>(),
    ...timestamps,
  },
  (t) => [index("webhook_deliveries_due_idx").on(t.status, t.nextAttemptAt), index("webhook_deliveries_app_idx").on(t.appId, t.createdAt)],
);

export type AppWebhookRow = typeof appWebhooks.$inferSelect;
export type WebhookEventRow = typeof webhookEvents.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
