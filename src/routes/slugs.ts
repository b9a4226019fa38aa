import { Hono } from "hono";
import { z } from "zod";
import { signToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { jsonBody } from "../lib/validate.ts";
import { toSlugJson } from "../serializers/slug.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { createSlug, getSlug } from "../services/apps/slugs.ts";

/** How long a slug upload URL stays valid. */
export const UPLOAD_URL_TTL_S = 3600;

const createBody = z
  .object({
    process_types: z.record(z.string(), z.string()),
    buildpack_provided_description: z.string().max(255).nullable().optional(),
    checksum: z.string().max(100).nullable().optional(),
    commit: z.string().max(100).nullable().optional(),
    commit_description: z.string().max(1024).nullable().optional(),
    stack: z.enum(["heroku-22", "heroku-24"]).nullable().optional(),
  })
  .strict();

/** Heroku's Slug API: create a slug (with a signed upload URL) and read it back. */
export const slugsRoutes = new Hono<AppEnv>()
  .post("/apps/:app/slugs", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const body = c.req.valid("json");
    const slug = await createSlug(c.var.db, app, {
      processTypes: body.process_types,
      commit: body.commit,
      commitDescription: body.commit_description,
      stack: body.stack,
      buildpackProvidedDescription: body.buildpack_provided_description,
    });
    const token = await signToken(c.env.COMMAND_SIGNING_KEY, { purpose: "slug-upload", audience: slug.id, ttlSeconds: UPLOAD_URL_TTL_S });
    const url = `https://${c.env.API_HOST}/blobs/slugs/${slug.id}?token=${token}`;
    return c.json(toSlugJson(slug, { method: "put", url }), 201);
  })
  .get("/apps/:app/slugs/:slug", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json(toSlugJson(await getSlug(c.var.db, app.id, c.req.param("slug")), null));
  });
