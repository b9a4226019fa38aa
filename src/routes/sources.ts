import { Hono, type Context } from "hono";
import { signToken, verifyToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { putHashed } from "../lib/r2-upload.ts";
import { toSourceJson } from "../serializers/build.ts";
import { createSource, getSourceById, markSourceUploaded, maxSourceBytes, sourceBlobPath } from "../services/builds/sources.ts";

/** How long source URLs stay valid (Heroku's are good for an hour too). */
export const SOURCE_URL_TTL_S = 3600;

/** `POST /sources`: a place to upload a source tarball for a build (signed PUT and GET URLs). */
export const sourcesRoutes = new Hono<AppEnv>().post("/sources", async (c) => {
  const source = await createSource(c.var.db, c.var.actor);
  const sign = (purpose: "source-upload" | "source-download") =>
    signToken(c.env.COMMAND_SIGNING_KEY, { purpose, audience: source.id, ttlSeconds: SOURCE_URL_TTL_S });
  const base = `https://${c.env.API_HOST}${sourceBlobPath(source.id)}`;
  return c.json(toSourceJson({ getUrl: `${base}?token=${await sign("source-download")}`, putUrl: `${base}?token=${await sign("source-upload")}` }), 201);
});

/** The source a signed URL names, after checking its signature for `purpose`. */
async function signedSource(c: Context<AppEnv>, purpose: "source-upload" | "source-download") {
  const id = c.req.param("id")!;
  await verifyToken(c.env.COMMAND_SIGNING_KEY, c.req.query("token") ?? "", purpose, id);
  const source = await getSourceById(c.var.db, id);
  if (!source) throw new ApiError("not_found", "Couldn't find that source.", "source");
  return source;
}

/**
 * The signed URLs of `POST /sources`: PUT stores a source tarball once (streamed into R2,
 * hashed on the way), GET reads it back.
 */
export const sourceBlobsRoutes = new Hono<AppEnv>()
  .put("/blobs/sources/:id", async (c) => {
    const source = await signedSource(c, "source-upload");
    if (source.size !== null) throw new ApiError("conflict", "This source has already been uploaded.");
    const length = Number(c.req.header("Content-Length"));
    if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
    const max = maxSourceBytes(c.env);
    if (length > max) throw new ApiError("payload_too_large", `Sources may be at most ${max / 1024 / 1024} MB.`);
    const checksum = await putHashed(c.env.BLOBS, source.blobKey, c.req.raw.body!, length, "application/gzip");
    await markSourceUploaded(c.var.db, source.id, length, checksum);
    return c.body(null, 200);
  })
  .get("/blobs/sources/:id", async (c) => {
    const source = await signedSource(c, "source-download");
    const object = source.size === null ? null : await c.env.BLOBS.get(source.blobKey);
    if (!object) throw new ApiError("not_found", "Nothing has been uploaded to this source yet.", "source");
    return new Response(object.body, { headers: { "Content-Type": "application/gzip", "Content-Length": String(object.size) } });
  });
