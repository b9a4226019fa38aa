import { type Context, Hono } from "hono";
import { z } from "zod";
import type { AppRow } from "../db/schema/apps.ts";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toDynoJson } from "../serializers/dyno.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { getDyno, listDynos, restartDynos, stopDynos } from "../services/dynos/dynos.ts";
import { runOneOffDyno } from "../services/dynos/one-off.ts";
import { getFormation } from "../services/dynos/formation.ts";
import { getAccount } from "../services/access/accounts.ts";
import { ecoExhausted, exhaustedLine } from "../services/eco/eco.ts";

const appOf = (c: Context<AppEnv>) => findAppForActor(c.var.db, c.var.actor, c.req.param("app")!);

async function restart(c: Context<AppEnv>, app: AppRow, selector?: string) {
  await restartDynos(requestContext(c, c.var.actor), app, selector);
  return c.json({}, 202);
}

async function stop(c: Context<AppEnv>, app: AppRow, selector: string) {
  await stopDynos(requestContext(c, c.var.actor), app, selector);
  return c.json({}, 202);
}

const runBody = z
  .object({
    command: z.string().max(16 * 1024),
    attach: z.boolean().optional(),
    env: z.record(z.string().max(256), z.union([z.string().max(64 * 1024), z.number()])).optional(),
    size: z.string().max(30).optional(),
    type: z.string().max(30).optional(),
    force_no_tty: z.boolean().nullable().optional(),
    time_to_live: z.number().optional(),
  })
  .strict();

/**
 * `/apps/{app}/dynos` and the per-type restart/stop actions (`heroku ps`, `ps:restart`,
 * `ps:stop`), and one-off dynos (`heroku run:detached`).
 */
export const dynosRoutes = new Hono<AppEnv>()
  .post("/apps/:app/dynos", jsonBody(runBody), async (c) => {
    const app = await appOf(c);
    const dyno = await runOneOffDyno(requestContext(c, c.var.actor), app, c.req.valid("json"));
    return c.json(toDynoJson(dyno, app), 201);
  })
  .get("/apps/:app/dynos", async (c) => {
    const app = await appOf(c);
    // Why an eco app sleeps when its owner's hours are spent: `heroku ps` prints this as a warning.
    const owner = await getAccount(c.var.db, app.ownerId);
    if (app.processTier === "eco" && ecoExhausted(owner, new Date())) c.header("Warning-Message", exhaustedLine(owner.ecoExhaustedUntil!));
    return c.json((await listDynos(c.var.db, app.id)).map((d) => toDynoJson(d, app)));
  })
  .get("/apps/:app/dynos/:dyno", async (c) => {
    const app = await appOf(c);
    return c.json(toDynoJson(await getDyno(c.var.db, app.id, c.req.param("dyno")), app));
  })
  .delete("/apps/:app/dynos", async (c) => restart(c, await appOf(c)))
  .delete("/apps/:app/dynos/:dyno", async (c) => restart(c, await appOf(c), c.req.param("dyno")))
  .post("/apps/:app/dynos/:dyno/actions/stop", async (c) => stop(c, await appOf(c), c.req.param("dyno")))
  .delete("/apps/:app/formations/:type", async (c) => {
    const app = await appOf(c);
    await getFormation(c.var.db, app.id, c.req.param("type"));
    return restart(c, app, c.req.param("type"));
  })
  .post("/apps/:app/formations/:type/actions/stop", async (c) => {
    const app = await appOf(c);
    await getFormation(c.var.db, app.id, c.req.param("type"));
    return stop(c, app, c.req.param("type"));
  });
