import { Hono } from "hono";
import { verifyToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { putCheckedSlug } from "../services/apps/slug-archive.ts";
import { getSlugById, markSlugUploaded, MAX_SLUG_BYTES } from "../services/apps/slugs.ts";

/**
 * Signed upload URLs (what S3 pre-signed URLs are on Heroku): `PUT /blobs/slugs/{id}`
 * stores a slug tarball in R2. The signature names the slug and expires; the body streams
 * straight into R2 while its SHA-256 is computed and, on a second branch, it is unpacked
 * and its tar headers checked. A refused slug is deleted and stays un-uploaded, so it
 * cannot be released, and the same URL may be used again for a good one.
 */
export const blobsRoutes = new Hono<AppEnv>().put("/blobs/slugs/:id", async (c) => {
  const id = c.req.param("id");
  await verifyToken(c.env.COMMAND_SIGNING_KEY, c.req.query("token") ?? "", "slug-upload", id);
  const slug = await getSlugById(c.var.db, id);
  if (!slug) throw new ApiError("not_found", "Couldn't find that slug.", "slug");
  if (slug.size !== null) throw new ApiError("conflict", "This slug has already been uploaded.");
  const length = Number(c.req.header("Content-Length"));
  if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
  if (length > MAX_SLUG_BYTES) throw new ApiError("payload_too_large", `Slugs may be at most ${MAX_SLUG_BYTES / 1024 / 1024} MB.`);
  const checksum = await putCheckedSlug(c.env.BLOBS, slug.blobKey, c.req.raw.body!, length);
  await markSlugUploaded(c.var.db, id, length, checksum);
  return c.body(null, 200);
});
