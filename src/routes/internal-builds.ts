import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { BuildRow } from "../db/schema/index.ts";
import { ApiError } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { limitBody } from "../middleware/body.ts";
import { database } from "../middleware/database.ts";
import { BUILD_OUTPUT, BUILD_RESULT, type GitSource } from "../protocol/build.ts";
import { getBuildById } from "../services/builds/records.ts";
import { completeBuild, storeBuildSlug } from "../services/builds/results.ts";
import { buildChannel } from "../services/builds/builds.ts";
import { storeCloneFile } from "../services/builds/git-clone.ts";
import { packsForBuild } from "../services/builds/git-packs.ts";
import { maxSourceBytes } from "../services/builds/sources.ts";
import { MAX_SLUG_BYTES } from "../services/apps/slugs.ts";
import { hostAuth, type HostEnv } from "./internal-hosts.ts";
import { CONTROL_PLANE_PATHS } from "../protocol/host.ts";

type BuildEnv = HostEnv & { Variables: HostEnv["Variables"] & { build: BuildRow } };

/** Output batches are at most 2,000 lines (src/protocol/build.ts); this bounds their JSON. */
const JSON_BODY_LIMIT = 8 * 1024 * 1024;

/** A build exists for a host only if it was assigned to that host. */
const assignedBuild = createMiddleware<BuildEnv>(async (c, next) => {
  const build = await getBuildById(c.var.db, c.req.param("id") ?? "");
  if (!build || build.hostId !== c.var.host.id) throw new ApiError("not_found", "Couldn't find that build.", "build");
  c.set("build", build);
  await next();
});

const pending = (build: BuildRow) => {
  if (build.status !== "pending") throw new ApiError("conflict", "This build has already ended.");
};

const limitJson = limitBody(JSON_BODY_LIMIT, "Request body too large.");

/**
 * The control plane's side of builds (src/protocol/build.ts): the assigned host fetches
 * the source, streams output, uploads the slug and reports the result.
 */
export const internalBuildsRoutes = new Hono<BuildEnv>()
  .use(`${CONTROL_PLANE_PATHS.build}/*`, database, hostAuth, assignedBuild)
  .get(`${CONTROL_PLANE_PATHS.build}/source`, async (c) => {
    const build = c.var.build;
    if (build.sourceKind === "git") {
      const source: GitSource = { packs: (await packsForBuild(c.var.db, build)).map((p) => ({ seq: p.seq, size: p.size! })) };
      return c.json(source);
    }
    const object = await c.env.BLOBS.get(build.sourceBlobKey);
    if (!object) throw new ApiError("not_found", "The build's source is not stored.", "source");
    return new Response(object.body, { headers: { "Content-Type": "application/gzip", "Content-Length": String(object.size) } });
  })
  .get(`${CONTROL_PLANE_PATHS.build}/packs/:seq`, async (c) => {
    const pack = (await packsForBuild(c.var.db, c.var.build)).find((p) => String(p.seq) === c.req.param("seq"));
    const object = pack ? await c.env.BLOBS.get(pack.blobKey) : null;
    if (!object) throw new ApiError("not_found", "Couldn't find that pack.", "pack");
    return new Response(object.body, { headers: { "Content-Type": "application/x-git-packed-objects", "Content-Length": String(object.size) } });
  })
  .post(`${CONTROL_PLANE_PATHS.build}/output`, limitJson, jsonBody(BUILD_OUTPUT), async (c) => {
    pending(c.var.build);
    await buildChannel(c.env, c.var.build.id).append(c.req.valid("json").lines);
    return c.body(null, 204);
  })
  .put(`${CONTROL_PLANE_PATHS.build}/slug`, async (c) => {
    pending(c.var.build);
    const length = Number(c.req.header("Content-Length"));
    if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
    if (length > MAX_SLUG_BYTES) throw new ApiError("payload_too_large", `Slugs may be at most ${MAX_SLUG_BYTES / 1024 / 1024} MB.`);
    let processTypes: unknown;
    try {
      processTypes = JSON.parse(c.req.query("process_types") ?? "{}");
    } catch {
      processTypes = null;
    }
    if (typeof processTypes !== "object" || processTypes === null || Array.isArray(processTypes)) {
      throw new ApiError("invalid_params", "process_types must be a JSON object.");
    }
    const slug = await storeBuildSlug(c.var.db, c.env.BLOBS, c.var.build, {
      processTypes: processTypes as Record<string, string>,
      length,
      body: c.req.raw.body!,
    });
    return c.json({ slug_id: slug.id }, 201);
  })
  .put(`${CONTROL_PLANE_PATHS.build}/repository/:file`, async (c) => {
    const length = Number(c.req.header("Content-Length"));
    if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
    // The commit's objects, packed: about the size of the pushes that brought them.
    const maxBytes = 2 * maxSourceBytes(c.env);
    if (length > maxBytes) throw new ApiError("payload_too_large", `Clone files may be at most ${maxBytes / 1024 / 1024} MB.`);
    await storeCloneFile(c.var.db, c.env.BLOBS, c.var.build, c.req.param("file"), c.req.raw.body!, maxBytes);
    return c.body(null, 204);
  })
  .post(`${CONTROL_PLANE_PATHS.build}/result`, limitJson, jsonBody(BUILD_RESULT), async (c) => {
    await completeBuild(c.var.db, c.env, c.var.build, c.req.valid("json"));
    return c.body(null, 204);
  });
