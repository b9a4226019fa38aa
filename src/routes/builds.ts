import { Hono, type Context } from "hono";
import { z } from "zod";
import { signToken } from "../auth/signing.ts";
import type { BuildRow } from "../db/schema/index.ts";
import type { AppEnv } from "../env.ts";
import { rangeOf, sendPage } from "../lib/respond.ts";
import { jsonBody } from "../lib/validate.ts";
import { toBuildJson } from "../serializers/build.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { BUILD_SORT_FIELDS, getBuild, listBuilds } from "../services/builds/records.ts";
import { buildFromSource } from "../services/builds/builds.ts";

/** How long an output_stream_url stays valid; every read of a build signs a fresh one. */
export const OUTPUT_URL_TTL_S = 3600;

const createBody = z
  .object({
    source_blob: z
      .object({
        url: z.string().min(1).max(4096),
        version: z.string().max(255).nullable().optional(),
        checksum: z.string().max(200).nullable().optional(),
        version_description: z.string().max(1024).nullable().optional(),
      })
      .strict(),
    buildpacks: z
      .array(z.object({ url: z.string().min(1).max(2048).optional(), name: z.string().min(1).max(2048).optional() }).strict())
      .max(10)
      .nullable()
      .optional(),
  })
  .strict();

/** The signed URL that streams one build's output as plain text. */
export async function outputStreamUrl(c: Context<AppEnv>, buildId: string): Promise<string> {
  const token = await signToken(c.env.COMMAND_SIGNING_KEY, { purpose: "build-output", audience: buildId, ttlSeconds: OUTPUT_URL_TTL_S });
  return `https://${c.env.API_HOST}/build-output/${buildId}?token=${token}`;
}

const buildJson = async (c: Context<AppEnv>, b: BuildRow) => toBuildJson(b, await outputStreamUrl(c, b.id));

/** Heroku's Build API: build an uploaded source, list an app's builds, read one. */
export const buildsRoutes = new Hono<AppEnv>()
  .post("/apps/:app/builds", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const build = await buildFromSource(c.var.db, c.env, app, c.var.actor, c.req.valid("json"));
    return c.json(await buildJson(c, build), 201);
  })
  .get("/apps/:app/builds", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const page = await listBuilds(c.var.db, app, rangeOf(c, BUILD_SORT_FIELDS));
    const urls = new Map(await Promise.all(page.items.map(async (b) => [b.id, await outputStreamUrl(c, b.id)] as const)));
    return sendPage(c, page, (b) => toBuildJson(b, urls.get(b.id)!));
  })
  .get("/apps/:app/builds/:build", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(await buildJson(c, await getBuild(c.var.db, app.id, c.req.param("build"))));
  });
