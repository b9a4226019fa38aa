import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppRow } from "../db/schema/index.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { toAddonJson, toAddonServiceJson, toAttachmentJson, toPlanJson } from "../serializers/addon.ts";
import { findPlan, findService, PLANS, planById, SERVICES } from "../services/addons/catalog.ts";
import {
  type AddonView,
  addonConfigVars,
  attachAddon,
  changePlan,
  createAddon,
  destroyAddon,
  detachAddon,
  findAddon,
  listAddonsForActor,
  listAddonsForApp,
} from "../services/addons/addons.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { createFork } from "../services/addons/copies.ts";
import { requestContext } from "../services/context.ts";

const appOf = (c: Context<AppEnv>, name = c.req.param("app")!) => findAppForActor(c.var.db, c.var.actor, name);

/** A plan as the CLI sends it (`{"name": "service:plan"}`) or as a bare identity. */
const planRef = z.union([z.string().max(200), z.object({ name: z.string().max(200).optional(), id: z.string().max(200).optional() }).strict()]);
const planName = (p: z.infer<typeof planRef>) => {
  const name = typeof p === "string" ? p : (p.name ?? p.id);
  if (!name) throw new ApiError("invalid_params", "A plan is needed, e.g. heroku-postgresql:essential-0.");
  return name;
};

const createBody = z
  .object({
    plan: planRef,
    attachment: z
      .object({ name: z.string().max(64).optional() })
      .strict()
      .optional(),
    config: z.record(z.string().max(100), z.string().max(1000)).optional(),
    name: z.string().max(64).optional(),
    confirm: z.string().max(100).optional(),
  })
  .strict();

const attachBody = z
  .object({
    addon: z.string().max(200),
    app: z.string().max(100),
    name: z.string().max(64).optional(),
    namespace: z.string().max(100).nullable().optional(),
    confirm: z.string().max(100).optional(),
  })
  .strict();

const resolveAddonBody = z
  .object({ addon: z.string().max(200), app: z.string().max(100).nullable().optional(), addon_service: z.string().max(100).nullable().optional() })
  .strict();
const resolveAttachmentBody = z
  .object({ addon_attachment: z.string().max(200), app: z.string().max(100).nullable().optional(), addon_service: z.string().max(100).nullable().optional() })
  .strict();

const addonJson = (v: AddonView) => toAddonJson(v.addon, v.app, addonConfigVars(v));

/**
 * Every attachment of these add-ons, with the config vars it sets, and the add-on's plan
 * when the request asks for it (`Accept-Inclusion: addon:plan`, as the CLI's `pg:*` do).
 */
function attachmentsJson(c: Context<AppEnv>, views: AddonView[], onApp?: AppRow) {
  const withPlan = /\baddon:plan\b/.test(c.req.header("Accept-Inclusion") ?? "");
  return views.flatMap((v) =>
    v.attachments
      .filter((a) => !onApp || a.app.id === onApp.id)
      .map((a) => {
        const json = toAttachmentJson(a.attachment, v.addon, v.app, a.app);
        const plan = PLANS.find((p) => p.name === v.addon.plan)!;
        return { ...json, ...(withPlan ? { addon: { ...json.addon, plan: { id: plan.id, name: plan.name } } } : {}), config_vars: a.configVars };
      }),
  );
}

/**
 * The add-on catalog (`/addon-services`, `/plans`), add-ons (`heroku addons:*`) and their
 * attachments, with the resolvers the CLI's `addons:*` and `pg:*` commands call.
 */
export const addonsRoutes = new Hono<AppEnv>()
  .get("/addon-services", (c) => c.json(SERVICES.map(toAddonServiceJson)))
  .get("/addon-services/:service", (c) => c.json(toAddonServiceJson(findService(c.req.param("service")))))
  .get("/addon-services/:service/plans", (c) => {
    const service = findService(c.req.param("service"));
    return c.json(PLANS.filter((p) => p.serviceId === service.id).map(toPlanJson));
  })
  .get("/addon-services/:service/plans/:plan", (c) => c.json(toPlanJson(findPlan(findService(c.req.param("service")), c.req.param("plan")))))
  .get("/plans/:plan", (c) => c.json(toPlanJson(planById(c.req.param("plan")))))

  .post("/apps/:app/addons", jsonBody(createBody), async (c) => {
    const app = await appOf(c);
    const body = c.req.valid("json");
    const input = { ...body, plan: planName(body.plan) };
    const ctx = requestContext(c, c.var.actor);
    // `-- --fork DATABASE`: a new database with another's data.
    const fork = body.config?.fork;
    const { view, configVars } =
      fork !== undefined ? await createFork(ctx, app, { ...input, config: { ...body.config, fork } }) : await createAddon(ctx, app, input);
    return c.json(toAddonJson(view.addon, view.app, configVars), 201);
  })
  .get("/apps/:app/addons", async (c) => c.json((await listAddonsForApp(c.var.db, await appOf(c))).map(addonJson)))
  .get("/apps/:app/addons/:addon", async (c) => {
    const app = await appOf(c);
    return c.json(addonJson(await findAddon(c.var.db, c.var.actor, c.req.param("addon"), app)));
  })
  .patch("/apps/:app/addons/:addon", jsonBody(z.object({ plan: planRef }).strict()), async (c) => {
    const app = await appOf(c);
    const view = await changePlan(requestContext(c, c.var.actor), app, c.req.param("addon"), planName(c.req.valid("json").plan));
    return c.json(addonJson(view));
  })
  .delete("/apps/:app/addons/:addon", async (c) => {
    const app = await appOf(c);
    const view = await destroyAddon(requestContext(c, c.var.actor), app, c.req.param("addon"));
    return c.json({ ...addonJson(view), state: "deprovisioned" });
  })
  .get("/addons", async (c) => c.json((await listAddonsForActor(c.var.db, c.var.actor)).map(addonJson)))
  .get("/addons/:addon", async (c) => c.json(addonJson(await findAddon(c.var.db, c.var.actor, c.req.param("addon")))))
  .get("/addons/:addon/addon-attachments", async (c) => c.json(attachmentsJson(c, [await findAddon(c.var.db, c.var.actor, c.req.param("addon"))])))
  .post("/actions/addons/resolve", jsonBody(resolveAddonBody), async (c) => {
    const body = c.req.valid("json");
    const app = body.app ? await appOf(c, body.app) : undefined;
    return c.json([addonJson(await findAddon(c.var.db, c.var.actor, body.addon, app))]);
  })

  .get("/addon-attachments", async (c) => c.json(attachmentsJson(c, await listAddonsForActor(c.var.db, c.var.actor))))
  .get("/addon-attachments/:attachment", async (c) => {
    const id = c.req.param("attachment");
    const found = attachmentsJson(c, await listAddonsForActor(c.var.db, c.var.actor)).find((a) => a.id === id);
    if (!found) throw new ApiError("not_found", "Couldn't find that add-on attachment.", "addon_attachment");
    return c.json(found);
  })
  .get("/apps/:app/addon-attachments", async (c) => {
    const app = await appOf(c);
    return c.json(attachmentsJson(c, await listAddonsForApp(c.var.db, app), app));
  })
  .get("/apps/:app/addon-attachments/:attachment", async (c) => {
    const app = await appOf(c);
    const key = c.req.param("attachment");
    const found = attachmentsJson(c, await listAddonsForApp(c.var.db, app), app).find((a) => a.id === key || a.name === key.toUpperCase());
    if (!found) throw new ApiError("not_found", "Couldn't find that add-on attachment.", "addon_attachment");
    return c.json(found);
  })
  .post("/actions/addon-attachments/resolve", jsonBody(resolveAttachmentBody), async (c) => {
    const body = c.req.valid("json");
    const app = body.app ? await appOf(c, body.app) : undefined;
    const key = body.addon_attachment;
    const name = key.toUpperCase().replace(/_URL$/, "");
    const views = app ? await listAddonsForApp(c.var.db, app) : await listAddonsForActor(c.var.db, c.var.actor);
    const all = attachmentsJson(c, views, app);
    const found = all.filter((a) => a.id === key || a.name === name || a.addon.name === key || a.addon.id === key);
    if (!found.length) throw new ApiError("not_found", `Couldn't find that add-on attachment: ${key}.`, "addon_attachment");
    return c.json(found);
  })
  .post("/addon-attachments", jsonBody(attachBody), async (c) => {
    const body = c.req.valid("json");
    const app = await appOf(c, body.app);
    const ctx = requestContext(c, c.var.actor);
    await attachAddon(ctx, body.addon, app, body.name);
    const view = await findAddon(c.var.db, c.var.actor, body.addon);
    const name = body.name?.toUpperCase();
    const created = attachmentsJson(c, [view], app).find((a) => !name || a.name === name)!;
    return c.json(created, 201);
  })
  .delete("/addon-attachments/:attachment", async (c) => {
    const { view, attachment } = await detachAddon(requestContext(c, c.var.actor), c.req.param("attachment"));
    return c.json(toAttachmentJson(attachment.attachment, view.addon, view.app, attachment.app));
  });
