import { Hono, type Context } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { rangeOf, sendPage } from "../lib/respond.ts";
import { publicUrls } from "../lib/urls.ts";
import { jsonBody } from "../lib/validate.ts";
import { toAppJson, toCollaboratorJson } from "../serializers/app.ts";
import { APP_SORT_FIELDS, type AppAccess, createApp, deleteApp, findAppForActor, listApps, updateApp } from "../services/apps/apps.ts";
import { addCollaborator, getMember, listMembers, removeCollaborator } from "../services/access/collaborators.ts";
import { requestContext } from "../services/context.ts";
import { customHostnames } from "../services/domains/providers.ts";

const appJson = (c: Context<AppEnv>, app: AppAccess) =>
  toAppJson(app, { id: app.ownerId, email: app.ownerEmail }, publicUrls(c.env), customHostnames(c.env).acm);

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

const collaboratorBody = z
  .object({
    user: z
      .string()
      .min(1)
      .max(254)
      .regex(/^[^\s\u0000]+$/, "an email address or account id"),
    // Heroku's: whether to skip the invitation email; dynoplane sends none either way.
    silent: z.boolean().optional(),
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
    return c.json(appJson(c, { ...app, ownerEmail: c.var.actor.email, role: "owner" }), 201);
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
    const body = c.req.valid("json");
    let app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    // Collaborators may turn maintenance on and off; the name is the owner's to change.
    if (body.name !== undefined && body.name !== app.name) app = await findAppForActor(c.var.db, c.var.actor, app.id, "rename it");
    const updated = await updateApp(c.var.db, c.var.actor, app, body, c.var.requestId);
    return c.json(appJson(c, { ...updated, ownerEmail: app.ownerEmail, role: app.role }));
  })
  .delete("/apps/:app", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"), "delete it");
    await deleteApp(requestContext(c, c.var.actor), app);
    return c.json(appJson(c, app));
  })
  .get("/apps/:app/collaborators", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listMembers(c.var.db, app)).map((m) => toCollaboratorJson(app, m)));
  })
  .get("/apps/:app/collaborators/:collaborator", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toCollaboratorJson(app, await getMember(c.var.db, app, c.req.param("collaborator"))));
  })
  .post("/apps/:app/collaborators", jsonBody(collaboratorBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"), "manage its collaborators");
    const member = await addCollaborator(requestContext(c, c.var.actor), app, c.req.valid("json").user);
    return c.json(toCollaboratorJson(app, member), 201);
  })
  .delete("/apps/:app/collaborators/:collaborator", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"), "manage its collaborators");
    const member = await removeCollaborator(requestContext(c, c.var.actor), app, c.req.param("collaborator"));
    return c.json(toCollaboratorJson(app, member));
  })
  .get("/apps/:app/pipeline-couplings", async (c) => {
    await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    throw new ApiError("not_found", "This app is not in a pipeline.", "pipeline_coupling");
  });
