import { z } from "zod";

/**
 * Builds: the control plane assigns each build to a host agent with a signed `build`
 * command (see COMMAND in ./host.ts); the agent fetches the source, runs the buildpacks,
 * streams output, uploads the slug and reports the result. All agent → control plane
 * calls carry `Authorization: Bearer <host secret>`.
 *
 *   GET  /internal/hosts/builds/:id/source        the source: for git builds a JSON
 *                                                 GitSource (packs to replay in order);
 *                                                 for tarball builds the tar.gz itself
 *   GET  /internal/hosts/builds/:id/packs/:seq    one stored pack, raw (git builds)
 *   POST /internal/hosts/builds/:id/output        BuildOutput → 204 (lines, in order)
 *   PUT  /internal/hosts/builds/:id/slug          the slug tar.gz (./app layout), with
 *                                                 Content-Length; ?process_types=<json>
 *                                                 → 201 { slug_id }
 *   POST /internal/hosts/builds/:id/result        BuildResult → 204; on success the
 *                                                 control plane cuts the release
 */

export const BUILDPACK_REF = z.object({
  /** `heroku/python`, `heroku/nodejs`, `heroku/procfile`, a git URL or a path on the host. */
  url: z.string().max(2048),
  name: z.string().max(255).optional(),
});

export const BUILD_SPEC = z.object({
  id: z.string().uuid(),
  app_id: z.string().uuid(),
  app_name: z.string(),
  kind: z.enum(["git", "tarball"]),
  /** For git builds: the commit to build. */
  commit: z
    .string()
    .regex(/^[0-9a-f]{40}$/)
    .nullable(),
  /** Empty: detect among the built-in buildpacks. */
  buildpacks: z.array(BUILDPACK_REF).max(10),
  /** The app's config vars, written to ENV_DIR. */
  env: z.record(z.string(), z.string()),
  /** Build time limit in seconds. */
  timeout_s: z.number().int().positive(),
  /** Largest slug accepted, in bytes. */
  max_slug_bytes: z.number().int().positive(),
});
export type BuildSpec = z.infer<typeof BUILD_SPEC>;

export interface GitSource {
  /** Packs in push order; replaying them with `git index-pack --fix-thin` rebuilds every commit. */
  packs: Array<{ seq: number; size: number }>;
}

export const BUILD_OUTPUT = z.object({
  lines: z.array(z.string().max(16 * 1024)).max(2_000),
});

export const BUILD_RESULT = z.object({
  status: z.enum(["succeeded", "failed"]),
  /** Set when the slug was uploaded. */
  slug_id: z.string().uuid().nullable(),
  /** Why the build failed, one line, shown to the user. */
  error: z.string().max(2048).nullable(),
  /** From `bin/release` (default_process_types), overridden by the Procfile. */
  process_types: z.record(z.string(), z.string()),
  buildpack_provided_description: z.string().max(255).nullable(),
  /** The built-in buildpack detection picked, when the build was given none (`heroku/python`). */
  detected_buildpack: z.string().max(255).nullable().optional(),
});
export type BuildResult = z.infer<typeof BUILD_RESULT>;
