import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toLogDrainJson } from "../serializers/log-drain.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { addDrain, getDrain, listDrains, removeDrain } from "../services/logs/drains.ts";

const createBody = z.object({ url: z.string().min(1).max(2048) }).strict();

/** `/apps/{app}/log-drains` (`heroku drains`, `drains:add`, `drains:remove`). */
export const logDrainsRoutes = new Hono<AppEnv>()
  .get("/apps/:app/log-drains", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listDrains(c.var.db, app.id)).map((d) => toLogDrainJson(d, app)));
  })
  .post("/apps/:app/log-drains", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const drain = await addDrain(c.var.db, c.env, c.var.actor, app, c.req.valid("json").url, c.var.requestId);
    return c.json(toLogDrainJson(drain, app), 201);
  })
  .get("/apps/:app/log-drains/:drain", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toLogDrainJson(await getDrain(c.var.db, app.id, c.req.param("drain")), app));
  })
  .delete("/apps/:app/log-drains/:drain", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const drain = await removeDrain(c.var.db, c.env, c.var.actor, app, c.req.param("drain"), c.var.requestId);
    return c.json(toLogDrainJson(drain, app));
  });
