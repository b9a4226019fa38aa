import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { getConfigVars, setConfigVars } from "../services/apps/config-vars.ts";
import { requestContext } from "../services/context.ts";

const patchBody = z.record(z.string(), z.string().nullable());

/** `/apps/{app}/config-vars`: read the config, or patch it (null removes a key) with a new release. */
export const configVarsRoutes = new Hono<AppEnv>()
  .get("/apps/:app/config-vars", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(await getConfigVars(c.var.db, app.id));
  })
  .patch("/apps/:app/config-vars", jsonBody(patchBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const { config } = await setConfigVars(requestContext(c, c.var.actor), app, c.req.valid("json"));
    return c.json(config);
  });
