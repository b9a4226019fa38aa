import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toFormationJson } from "../serializers/formation.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { getFormation, listFormation, updateFormation } from "../services/dynos/formation.ts";

const quantity = z.union([z.string().max(8), z.number().int()]);
const update = z.object({ type: z.string().min(1).max(30), quantity: quantity.optional(), size: z.string().max(30).optional() }).strict();
const batchBody = z.object({ updates: z.array(update).min(1).max(50) }).strict();
const oneBody = update.omit({ type: true }).strict();

/** `/apps/{app}/formation`: process types, their quantity and size (`heroku ps:scale`). */
export const formationRoutes = new Hono<AppEnv>()
  .get("/apps/:app/formation", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listFormation(c.var.db, app.id)).map((f) => toFormationJson(f, app)));
  })
  .patch("/apps/:app/formation", jsonBody(batchBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const { formation } = await updateFormation(requestContext(c, c.var.actor), app, c.req.valid("json").updates);
    return c.json(formation.map((f) => toFormationJson(f, app)));
  })
  .get("/apps/:app/formation/:type", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toFormationJson(await getFormation(c.var.db, app.id, c.req.param("type")), app));
  })
  .patch("/apps/:app/formation/:type", jsonBody(oneBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const body = c.req.valid("json");
    const { formation } = await updateFormation(requestContext(c, c.var.actor), app, [{ type: c.req.param("type"), ...body }]);
    return c.json(toFormationJson(formation[0]!, app));
  });
