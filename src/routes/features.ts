import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { toAppFeatureJson } from "../serializers/feature.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { getAppFeature, listAppFeatures, setAppFeature } from "../services/apps/features.ts";

const updateBody = z.object({ enabled: z.boolean() }).strict();

/**
 * `/apps/{app}/features`: `heroku features`, `features:info`, `features:enable` and
 * `features:disable`; `heroku labs:enable log-runtime-metrics` too, which asks for an account
 * feature of that name first (dynoplane has none) and then for the app's.
 */
export const featuresRoutes = new Hono<AppEnv>()
  .get("/account/features", (c) => c.json([]))
  .get("/account/features/:feature", () => {
    throw new ApiError("not_found", "Couldn't find that feature.", "account-feature");
  })
  .get("/apps/:app/features", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await listAppFeatures(c.var.db, app)).map(toAppFeatureJson));
  })
  .get("/apps/:app/features/:feature", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toAppFeatureJson(await getAppFeature(c.var.db, app, c.req.param("feature"))));
  })
  .patch("/apps/:app/features/:feature", jsonBody(updateBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const feature = await setAppFeature(requestContext(c, c.var.actor), app, c.req.param("feature"), c.req.valid("json").enabled);
    return c.json(toAppFeatureJson(feature));
  });
