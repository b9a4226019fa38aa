import { Hono, type Context } from "hono";
import type { AppRow } from "../db/schema/apps.ts";
import { z } from "zod";
import type { Actor, AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { rangeOf, sendPage } from "../lib/respond.ts";
import { publicUrls } from "../lib/urls.ts";
import { jsonBody } from "../lib/validate.ts";
import { toAppJson, toOwnerCollaboratorJson } from "../serializers/app.ts";
import { APP_SORT_FIELDS, createApp, deleteApp, findAppForActor, listApps, updateApp } from "../services/apps.ts";
import { requestContext } from "../services/context.ts";

/** Apps are reached only through their owner, so the owner is the caller. */
const ownerOf = (actor: Actor) => ({ id: actor.accountId, email: actor.email });
const appJson = (c: Context<AppEnv>, app: AppRow) => toAppJson(app, ownerOf(c.var.actor), publicUrls(c.env));

const createBody = z
  .object({
    name: z.string().max(64).nullable().optional(),
    region: z.string().max(64).nullable().optional(),
    stack: z.string().max(64).nullable().optional(),
    // Accepted for compatibility with `heroku create` flags that change nothing here.
    feature_flags: z.array(z.string()).optional(),
    internal_routing: z.boolean().nullable().optional(),
    kernel: z.string().nullable().optional(),
    locked: z.boolean().nullable().optional(),
  })
  .strict();

const updateBody = z
  .object({
    name: z.string().max(64).optional(),
    maintenance: z.boolean().optional(),
    build_stack: z.string().max(64).optional(),
  })
  .strict();

/** `/apps`, `/users/~/apps`, `/apps/{app}` and the small per-app lists the CLI reads with them. */
export const appsRoutes = new Hono<AppEnv>()
  .post("/apps", jsonBody(createBody), async (c) => {
    const app = await createApp(requestContext(c, c.var.actor), c.req.valid("json"));
    return c.json(appJson(c, app), 201);
  })
  .get("/apps", async (c) => {
    const page = await listApps(c.var.db, c.var.actor, rangeOf(c, APP_SORT_FIELDS));
    return sendPage(c, page, (app) => appJson(c, app));
  })
  .get("/users/:user/apps", async (c) => {
    const user = c.req.param("user");
    if (user !== "~" && user !== c.var.actor.accountId && user.toLowerCase() !== c.var.actor.email) {
      throw new ApiError("not_found", "Couldn't find that user.", "user");
    }
    const page = await listApps(c.var.db, c.var.actor, rangeOf(c, APP_SORT_FIELDS));
    return sendPage(c, page, (app) => appJson(c, app));
  })
  .get("/apps/:app", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(appJson(c, app));
  })
  .patch("/apps/:app", jsonBody(updateBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const updated = await updateApp(c.var.db, c.var.actor, app, c.req.valid("json"), c.var.requestId);
    return c.json(appJson(c, updated));
  })
  .delete("/apps/:app", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const deleted = await deleteApp(requestContext(c, c.var.actor), app);
    return c.json(appJson(c, deleted));
  })
  .get("/apps/:app/collaborators", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json([toOwnerCollaboratorJson(app, ownerOf(c.var.actor))]);
  })
  .get("/apps/:app/pipeline-couplings", async (c) => {
    await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    throw new ApiError("not_found", "This app is not in a pipeline.", "pipeline_coupling");
  });
