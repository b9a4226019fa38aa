import type { BuildpackRef, BuildRow } from "../db/schema/builds.ts";
import { isoTime } from "./common.ts";

/**
 * Heroku's build shape. `output_stream_url` is a signed, expiring URL of the build's
 * output; `source_blob.url` is what the build was made from (the app's git URL for a push).
 */
export function toBuildJson(b: BuildRow, outputStreamUrl: string) {
  return {
    id: b.id,
    app: { id: b.appId },
    buildpacks: b.buildpacks.map((p) => ({ url: p.url, name: p.name ?? p.url })),
    generation: "cedar",
    output_stream_url: outputStreamUrl,
    release: b.releaseId ? { id: b.releaseId } : null,
    slug: b.slugId ? { id: b.slugId } : null,
    source_blob: {
      checksum: b.sourceChecksum,
      url: b.sourceUrl,
      version: b.sourceVersion,
      version_description: null,
    },
    stack: b.stack,
    status: b.status,
    user: { id: b.createdBy ?? "00000000-0000-0000-0000-000000000000", email: b.userEmail },
    created_at: isoTime(b.createdAt),
    updated_at: isoTime(b.updatedAt),
  };
}

/** Heroku's source shape: where to upload a tarball and where builds will read it from. */
export function toSourceJson(urls: { getUrl: string; putUrl: string }) {
  return { source_blob: { get_url: urls.getUrl, put_url: urls.putUrl } };
}

/** Heroku's buildpack-installation shape: one per buildpack, numbered in run order from 0. */
export function toBuildpackInstallationJson(ref: BuildpackRef, ordinal: number) {
  return { ordinal, buildpack: { url: ref.url, name: ref.name ?? ref.url } };
}
