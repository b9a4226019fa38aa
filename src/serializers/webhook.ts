import type { AppWebhookRow, WebhookDeliveryRow, WebhookEventRow } from "../db/schema/index.ts";
import { isoTime, isoTimeOrNull } from "./common.ts";

type AppRef = { id: string; name: string };

/** Heroku's app webhook shape (the secret is never part of it: it is shown once, in a header). */
export function toWebhookJson(w: AppWebhookRow, app: AppRef) {
  return {
    id: w.id,
    app: { id: app.id, name: app.name },
    include: w.include,
    level: w.level,
    url: w.url,
    created_at: isoTime(w.createdAt),
    updated_at: isoTime(w.updatedAt),
  };
}

export function toWebhookEventJson(e: WebhookEventRow) {
  return { id: e.id, include: e.include, payload: e.payload, created_at: isoTime(e.createdAt), updated_at: isoTime(e.updatedAt) };
}

export function toWebhookDeliveryJson(d: WebhookDeliveryRow, include: string, level: string) {
  return {
    id: d.id,
    event: { id: d.eventId, include },
    webhook: { id: d.webhookId, level },
    status: d.status,
    num_attempts: d.numAttempts,
    next_attempt_at: isoTimeOrNull(d.nextAttemptAt),
    last_attempt: d.lastAttempt ?? null,
    created_at: isoTime(d.createdAt),
    updated_at: isoTime(d.updatedAt),
  };
}
