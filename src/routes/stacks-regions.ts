import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { notFound } from "../errors.ts";
import { REGION_IDS, STACK_IDS } from "../serializers/common.ts";
import { toRegionJson, toStackJson } from "../serializers/stacks-regions.ts";
import { findAppForActor, REGIONS, STACKS } from "../services/apps/apps.ts";

/** A fixed name, by itself or by its id. */
function byNameOrId<T extends string>(names: readonly T[], ids: Record<string, string>, key: string): T | undefined {
  return names.find((n) => n === key.toLowerCase() || ids[n] === key.toLowerCase());
}

/** `heroku regions`, `heroku apps:stacks` (and `stack`): the regions and stacks of this platform. */
export const stacksRegionsRoutes = new Hono<AppEnv>()
  .get("/regions", (c) => c.json(REGIONS.map(toRegionJson)))
  .get("/regions/:region", (c) => {
    const region = byNameOrId(REGIONS, REGION_IDS, c.req.param("region"));
    if (!region) throw notFound("region", "Couldn't find that region.");
    return c.json(toRegionJson(region));
  })
  .get("/stacks", (c) => c.json(STACKS.map(toStackJson)))
  .get("/stacks/:stack", (c) => {
    const stack = byNameOrId(STACKS, STACK_IDS, c.req.param("stack"));
    if (!stack) throw notFound("stack", "Couldn't find that stack.");
    return c.json(toStackJson(stack));
  })
  .get("/apps/:app/available-stacks", async (c) => {
    await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(STACKS.map(toStackJson));
  });
