import { Hono } from "hono";
import { verifyToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { bytesToHex } from "../lib/bytes.ts";
import { getSlugById, markSlugUploaded, MAX_SLUG_BYTES } from "../services/slugs.ts";

/**
 * Signed upload URLs (what S3 pre-signed URLs are on Heroku): `PUT /blobs/slugs/{id}`
 * stores a slug tarball in R2. The signature names the slug and expires; the body streams
 * straight into R2 while its SHA-256 is computed on the way.
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
  const [toStore, toHash] = c.req.raw.body!.tee();
  const digest = new crypto.DigestStream("SHA-256");
  const hashing = toHash.pipeTo(digest);
  await c.env.BLOBS.put(slug.blobKey, toStore.pipeThrough(new FixedLengthStream(length)), { httpMetadata: { contentType: "application/gzip" } });
  await hashing;
  const checksum = `SHA256:${bytesToHex(new Uint8Array(await digest.digest))}`;
  await markSlugUploaded(c.var.db, id, length, checksum);
  return c.body(null, 200);
});
