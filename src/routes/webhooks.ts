import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toWebhookDeliveryJson, toWebhookEventJson, toWebhookJson } from "../serializers/webhook.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  getWebhookEvent,
  listWebhookDeliveries,
  listWebhookEvents,
  listWebhooks,
  updateWebhook,
} from "../services/webhooks/webhooks.ts";

const fields = {
  url: z.string().min(1).max(2048),
  include: z.array(z.string().max(50)).max(10),
  level: z.string().max(20),
  secret: z.string().max(256).nullable().optional(),
  authorization: z.string().max(1024).nullable().optional(),
};
const createBody = z.object(fields).strict();
const updateBody = z.object(fields).partial().strict();

/** `heroku webhooks`, `webhooks:add/update/remove/info`, `webhooks:events` and `webhooks:deliveries`. */
export const webhooksRoutes = new Hono<AppEnv>()
  .get("/apps/:app/webhooks", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listWebhooks(c.var.db, app.id)).map((w) => toWebhookJson(w, app)));
  })
  .post("/apps/:app/webhooks", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const { row, secret } = await createWebhook(requestContext(c, c.var.actor), app, c.req.valid("json"));
    // The signing secret, once: the CLI prints it under "Webhooks Signing Secret".
    c.header("Heroku-Webhook-Secret", secret);
    c.header("Cache-Control", "no-store");
    return c.json(toWebhookJson(row, app), 201);
  })
  .get("/apps/:app/webhooks/:webhook", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toWebhookJson(await getWebhook(c.var.db, app.id, c.req.param("webhook")), app));
  })
  .patch("/apps/:app/webhooks/:webhook", jsonBody(updateBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toWebhookJson(await updateWebhook(requestContext(c, c.var.actor), app, c.req.param("webhook"), c.req.valid("json")), app));
  })
  .delete("/apps/:app/webhooks/:webhook", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toWebhookJson(await deleteWebhook(requestContext(c, c.var.actor), app, c.req.param("webhook")), app));
  })
  .get("/apps/:app/webhook-events", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listWebhookEvents(c.var.db, app.id)).map(toWebhookEventJson));
  })
  .get("/apps/:app/webhook-events/:event", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toWebhookEventJson(await getWebhookEvent(c.var.db, app.id, c.req.param("event"))));
  })
  .get("/apps/:app/webhook-deliveries", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    // `heroku webhooks:deliveries --status failed` asks for `eq[status]=failed`.
    const rows = await listWebhookDeliveries(c.var.db, app.id, undefined, c.req.query("eq[status]"));
    return c.json(rows.map((r) => toWebhookDeliveryJson(r.delivery, r.include, r.level)));
  })
  .get("/apps/:app/webhook-deliveries/:delivery", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const [r] = await listWebhookDeliveries(c.var.db, app.id, c.req.param("delivery"));
    return c.json(toWebhookDeliveryJson(r!.delivery, r!.include, r!.level));
  });
