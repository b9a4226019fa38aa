import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toBuildpackInstallationJson } from "../serializers/build.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { setBuildpacks } from "../services/builds/buildpacks.ts";

const updateBody = z.object({ updates: z.array(z.object({ buildpack: z.string().min(1).max(2048) }).strict()).max(100) }).strict();

/** `/apps/{app}/buildpack-installations`: the buildpacks the app's builds run, in order. */
export const buildpackInstallationsRoutes = new Hono<AppEnv>()
  .get("/apps/:app/buildpack-installations", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(app.buildpacks.map(toBuildpackInstallationJson));
  })
  .put("/apps/:app/buildpack-installations", jsonBody(updateBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const refs = await setBuildpacks(
      c.var.db,
      c.var.actor,
      app,
      c.req.valid("json").updates.map((u) => u.buildpack),
      c.var.requestId,
    );
    return c.json(refs.map(toBuildpackInstallationJson));
  });
