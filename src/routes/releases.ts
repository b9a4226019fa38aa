import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { rangeOf, sendPage } from "../lib/respond.ts";
import { jsonBody } from "../lib/validate.ts";
import { toReleaseJson } from "../serializers/release.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { releaseSlug } from "../services/apps/slugs.ts";
import { currentVersion, getRelease, listReleases, RELEASE_SORT_FIELDS, rollback } from "../services/apps/releases.ts";

const createBody = z
  .object({
    release: z.string().min(1).max(64).optional(),
    slug: z.string().min(1).max(64).optional(),
    description: z.string().max(1024).optional(),
  })
  .strict()
  .refine((b) => !!b.release !== !!b.slug, { message: "give either release (a rollback) or slug (a deploy)" });

/** `/apps/{app}/releases`: the release history, one release and its config, and rollback. */
export const releasesRoutes = new Hono<AppEnv>()
  .get("/apps/:app/releases", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const range = rangeOf(c, RELEASE_SORT_FIELDS);
    const [page, current] = [await listReleases(c.var.db, app, range), await currentVersion(c.var.db, app.id)];
    return sendPage(c, page, (r) => toReleaseJson(r, app, current));
  })
  .get("/apps/:app/releases/:release", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const release = await getRelease(c.var.db, app, c.req.param("release"));
    return c.json(toReleaseJson(release, app, await currentVersion(c.var.db, app.id)));
  })
  .get("/apps/:app/releases/:release/config-vars", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    return c.json((await getRelease(c.var.db, app, c.req.param("release"))).config);
  })
  .post("/apps/:app/releases", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const body = c.req.valid("json");
    const ctx = requestContext(c, c.var.actor);
    const release = body.slug ? await releaseSlug(ctx, app, body.slug, body.description) : await rollback(ctx, app, body.release!);
    return c.json(toReleaseJson(release, app, release.version), 201);
  });
