import { tenantFetch } from "../../lib/tenant-network.ts";
import { and, desc, eq, inArray, isNull, lte, or, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import {
  type AppWebhookRow,
  appWebhooks,
  type DeliveryStatus,
  WEBHOOK_ENTITIES,
  type WebhookDeliveryRow,
  type WebhookEntity,
  type WebhookEventRow,
  webhookDeliveries,
  webhookEvents,
} from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { bytesToBase64, bytesToHex } from "../../lib/bytes.ts";
import { seal, unseal } from "../../lib/sealed.ts";
import { drainUrlProblem } from "../../logs/drain-url.ts";
import { recordAudit } from "../events/audit.ts";
import { actingUser, type ServiceContext } from "../context.ts";

export type WebhookLevel = "notify" | "sync";

export interface WebhookInput {
  url?: string;
  include?: string[];
  level?: string;
  secret?: string | null;
  authorization?: string | null;
}

/** Seconds between a sync webhook's attempts; a delivery still failing a day after its event is given up. */
export const RETRY_DELAYS_S = [15, 60, 300, 600, 1800, 3600];
const GIVE_UP_AFTER_MS = 24 * 3600 * 1000;
const ATTEMPT_TIMEOUT_MS = 10_000;
const ATTEMPTS_AT_ONCE = 8;

const webhookNotFound = () => new ApiError("not_found", "Couldn't find that webhook.", "app_webhook");

/** Checks what a webhook is made of; the URL by the rules drains follow, https only. Throws invalid_params. Pure. */
export function checkWebhook(input: WebhookInput, env: Pick<Bindings, "API_HOST" | "APPS_DOMAIN" | "DRAIN_ALLOW_HOSTS">): void {
  if (input.url !== undefined) {
    const problem = input.url.startsWith("https://") ? drainUrlProblem(input.url, env) : "must use https";
    if (problem) throw invalidParams(`Webhook URL ${input.url} ${problem}.`);
  }
  if (input.include !== undefined) {
    const unknown = input.include.filter((e) => !(WEBHOOK_ENTITIES as readonly string[]).includes(e));
    if (!input.include.length || unknown.length) {
      throw invalidParams(`Include ${unknown.length ? unknown.join(", ") : "at least one entity"}: webhooks can include ${WEBHOOK_ENTITIES.join(", ")}.`);
    }
  }
  if (input.level !== undefined && input.level !== "notify" && input.level !== "sync") throw invalidParams("Level must be notify or sync.");
  if (input.secret != null && (input.secret.length < 1 || input.secret.length > 256)) throw invalidParams("A secret is 1 to 256 characters.");
}

/** A random signing secret, as Heroku makes one when none is given. */
function newSecret(): string {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(32)));
}

export async function listWebhooks(db: Database, appId: string): Promise<AppWebhookRow[]> {
  return db.select().from(appWebhooks).where(eq(appWebhooks.appId, appId)).orderBy(appWebhooks.createdAt);
}

export async function getWebhook(db: Database, appId: string, id: string): Promise<AppWebhookRow> {
  if (!isUuid(id)) throw webhookNotFound();
  const [row] = await db
    .select()
    .from(appWebhooks)
    .where(and(eq(appWebhooks.appId, appId), eq(appWebhooks.id, id)))
    .limit(1);
  if (!row) throw webhookNotFound();
  return row;
}

/** Subscribes a URL to some of the app's events (`heroku webhooks:add`); returns it with its secret, shown once. */
export async function createWebhook(
  ctx: ServiceContext,
  app: { id: string; name: string },
  input: Required<Pick<WebhookInput, "url" | "include" | "level">> & WebhookInput,
) {
  const actor = actingUser(ctx);
  checkWebhook(input, ctx.env);
  const secret = input.secret ?? newSecret();
  const row = await ctx.db.transaction(async (tx) => {
    const [made] = await tx
      .insert(appWebhooks)
      .values({
        appId: app.id,
        url: input.url,
        include: [...new Set(input.include)] as WebhookEntity[],
        level: input.level as WebhookLevel,
        secretSealed: await seal(ctx.env.COMMAND_SIGNING_KEY, secret),
        authorizationSealed: input.authorization ? await seal(ctx.env.COMMAND_SIGNING_KEY, input.authorization) : null,
      })
      .onConflictDoNothing()
      .returning();
    if (!made) throw invalidParams(`${app.name} already has a webhook for ${input.url}.`);
    await recordAudit(tx, { actor, action: "webhook.add", app, details: { url: input.url, include: made.include }, requestId: ctx.requestId });
    return made;
  });
  return { row, secret };
}

export async function updateWebhook(ctx: ServiceContext, app: { id: string; name: string }, id: string, input: WebhookInput): Promise<AppWebhookRow> {
  const actor = actingUser(ctx);
  checkWebhook(input, ctx.env);
  const current = await getWebhook(ctx.db, app.id, id);
  const [row] = await ctx.db
    .update(appWebhooks)
    .set({
      ...(input.url !== undefined && { url: input.url }),
      ...(input.include !== undefined && { include: [...new Set(input.include)] as WebhookEntity[] }),
      ...(input.level !== undefined && { level: input.level as WebhookLevel }),
      ...(input.secret != null && { secretSealed: await seal(ctx.env.COMMAND_SIGNING_KEY, input.secret) }),
      ...(input.authorization !== undefined && {
        authorizationSealed: input.authorization ? await seal(ctx.env.COMMAND_SIGNING_KEY, input.authorization) : null,
      }),
      updatedAt: sql`now()`,
    })
    .where(eq(appWebhooks.id, current.id))
    .returning();
  await recordAudit(ctx.db, { actor, action: "webhook.update", app, details: { id, url: row!.url }, requestId: ctx.requestId });
  return row!;
}

export async function deleteWebhook(ctx: ServiceContext, app: { id: string; name: string }, id: string): Promise<AppWebhookRow> {
  const actor = actingUser(ctx);
  const row = await getWebhook(ctx.db, app.id, id);
  await ctx.db.delete(appWebhooks).where(eq(appWebhooks.id, row.id));
  await recordAudit(ctx.db, { actor, action: "webhook.remove", app, details: { id, url: row.url }, requestId: ctx.requestId });
  return row;
}

/**
 * Records an event of the app for the webhooks subscribed to its entity, in the caller's
 * transaction, with one pending delivery each; nothing when none is subscribed. They are
 * sent when the change's event is dispatched (events/outbox.ts), else by the scheduled run.
 */
export async function recordWebhookEvent(
  db: Database,
  app: { id: string; name: string },
  include: WebhookEntity,
  action: "create" | "update" | "destroy",
  data: Record<string, unknown>,
  actor: Pick<Actor, "accountId" | "email"> | null,
): Promise<void> {
  const hooks = await db
    .select({ id: appWebhooks.id })
    .from(appWebhooks)
    .where(and(eq(appWebhooks.appId, app.id), sql`${include} = any(${appWebhooks.include})`));
  if (!hooks.length) return;
  const id = crypto.randomUUID();
  const now = new Date().toISOString();
  const payload = {
    id,
    action,
    actor: actor ? { id: actor.accountId, email: actor.email } : { id: null, email: "dynoplane" },
    data,
    previous_data: {},
    resource: include.replace(/^api:/, ""),
    version: "application/vnd.heroku+json; version=3",
    sequence: null,
    created_at: now,
    updated_at: now,
    published_at: now,
  };
  await db.insert(webhookEvents).values({ id, appId: app.id, include, payload });
  await db.insert(webhookDeliveries).values(hooks.map((h) => ({ appId: app.id, webhookId: h.id, eventId: id, status: "pending" as const })));
}

/** `base64(HMAC-SHA256(secret, body))`, Heroku's `Heroku-Webhook-Hmac-SHA256`. */
export async function webhookSignature(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return bytesToBase64(mac);
}

/**
 * Sends the deliveries that are due (pending, or retrying whose time has come), for one app
 * or all: each claimed first (so two runs never send the same one), then POSTed, signed, to
 * its webhook. A 2xx succeeds; otherwise a `notify` webhook's delivery fails and a `sync`
 * one's is retried on RETRY_DELAYS_S, for a day.
 */
export async function deliverDue(db: Database, env: Bindings, o: { appId?: string; now?: Date; limit?: number } = {}) {
  const now = o.now ?? new Date();
  const due = and(
    or(
      eq(webhookDeliveries.status, "pending"),
      // Retries whose time has come, and claims a run never finished (its instance went away).
      and(inArray(webhookDeliveries.status, ["retrying", "scheduled"]), lte(webhookDeliveries.nextAttemptAt, now)),
    ),
    o.appId ? eq(webhookDeliveries.appId, o.appId) : undefined,
  );
  const claimed = await db
    .update(webhookDeliveries)
    .set({ status: "scheduled", nextAttemptAt: new Date(now.getTime() + 5 * 60_000), updatedAt: sql`now()` })
    .where(
      inArray(
        webhookDeliveries.id,
        db
          .select({ id: webhookDeliveries.id })
          .from(webhookDeliveries)
          .where(due)
          .orderBy(webhookDeliveries.createdAt)
          .limit(o.limit ?? 100)
          .for("update", { skipLocked: true }),
      ),
    )
    .returning();
  // A few at a time: one slow endpoint (10 s at most) holds up no one else's deliveries.
  let succeeded = 0;
  const queue = [...claimed];
  await Promise.all(
    Array.from({ length: Math.min(ATTEMPTS_AT_ONCE, queue.length) }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) if ((await attempt(db, env, d, now)) === "succeeded") succeeded++;
    }),
  );
  return { sent: claimed.length, succeeded };
}

async function attempt(db: Database, env: Bindings, delivery: WebhookDeliveryRow, now: Date): Promise<DeliveryStatus> {
  const [hook] = await db.select().from(appWebhooks).where(eq(appWebhooks.id, delivery.webhookId)).limit(1);
  const [event] = await db.select().from(webhookEvents).where(eq(webhookEvents.id, delivery.eventId)).limit(1);
  if (!hook || !event) return "failed";
  const attemptId = crypto.randomUUID();
  const started = new Date();
  const body = JSON.stringify({
    ...event.payload,
    webhook_metadata: { attempt: { id: attemptId }, delivery: { id: delivery.id }, event: { id: event.id, include: event.include }, webhook: { id: hook.id } },
  });
  let code: number | null = null;
  let errorClass: string | null = null;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": "dynoplane-webhooks",
    "Heroku-Webhook-Id": delivery.id,
    "Heroku-Webhook-Sent-At": started.toISOString(),
  };
  try {
    headers["Heroku-Webhook-Hmac-SHA256"] = await webhookSignature(await unseal(env.COMMAND_SIGNING_KEY, hook.secretSealed), body);
    if (hook.authorizationSealed) headers.Authorization = await unseal(env.COMMAND_SIGNING_KEY, hook.authorizationSealed);
  } catch {
    // Sealed under another signing key (it was rotated): nothing is sent unsigned.
    errorClass = "SecretUnreadable";
  }
  // The URL is checked again: the rules may have tightened since the webhook was made.
  const problem = errorClass ? null : drainUrlProblem(hook.url, env);
  if (problem) errorClass = "RefusedAddress";
  else if (!errorClass) {
    try {
      const res = await tenantFetch(env, hook.url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS) });
      code = res.status;
      await res.body?.cancel();
    } catch (err) {
      errorClass = (err as Error).name === "TimeoutError" ? "Timeout" : "ConnectionFailed";
    }
  }
  const ok = code !== null && code >= 200 && code < 300;
  const attempts = delivery.numAttempts + 1;
  const age = now.getTime() - delivery.createdAt.getTime();
  const retry = !ok && hook.level === "sync" && age < GIVE_UP_AFTER_MS;
  const status: DeliveryStatus = ok ? "succeeded" : retry ? "retrying" : "failed";
  const delay = RETRY_DELAYS_S[Math.min(attempts - 1, RETRY_DELAYS_S.length - 1)]! * 1000;
  await db
    .update(webhookDeliveries)
    .set({
      status,
      numAttempts: attempts,
      nextAttemptAt: retry ? new Date(now.getTime() + delay) : null,
      lastAttempt: {
        id: attemptId,
        code,
        error_class: errorClass,
        status: ok ? "succeeded" : "failed",
        created_at: started.toISOString(),
        updated_at: new Date().toISOString(),
      },
      updatedAt: sql`now()`,
    })
    .where(eq(webhookDeliveries.id, delivery.id));
  return status;
}

/** The app's events, newest first (at most 100: Heroku keeps a week's). */
export async function listWebhookEvents(db: Database, appId: string): Promise<WebhookEventRow[]> {
  return db.select().from(webhookEvents).where(eq(webhookEvents.appId, appId)).orderBy(desc(webhookEvents.createdAt)).limit(100);
}

export async function getWebhookEvent(db: Database, appId: string, id: string): Promise<WebhookEventRow> {
  const [row] = isUuid(id)
    ? await db
        .select()
        .from(webhookEvents)
        .where(and(eq(webhookEvents.appId, appId), eq(webhookEvents.id, id)))
        .limit(1)
    : [];
  if (!row) throw new ApiError("not_found", "Couldn't find that webhook event.", "app_webhook_event");
  return row;
}

/** The app's deliveries with their event's entity and their webhook's level, newest first. */
export async function listWebhookDeliveries(db: Database, appId: string, id?: string, status?: string) {
  const rows = await db
    .select({ delivery: webhookDeliveries, include: webhookEvents.include, level: appWebhooks.level })
    .from(webhookDeliveries)
    .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
    .innerJoin(appWebhooks, eq(appWebhooks.id, webhookDeliveries.webhookId))
    .where(
      and(
        eq(webhookDeliveries.appId, appId),
        id ? (isUuid(id) ? eq(webhookDeliveries.id, id) : isNull(webhookDeliveries.id)) : undefined,
        status ? eq(webhookDeliveries.status, status as DeliveryStatus) : undefined,
      ),
    )
    .orderBy(desc(webhookDeliveries.createdAt))
    .limit(100);
  if (id && !rows.length) throw new ApiError("not_found", "Couldn't find that webhook delivery.", "app_webhook_delivery");
  return rows;
}
