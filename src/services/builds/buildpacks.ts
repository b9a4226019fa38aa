import { eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, type AppRow, type BuildpackRef } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { invalidParams } from "../../errors.ts";
import { recordAudit } from "../events/audit.ts";

/** The buildpacks every host agent carries. */
export const BUILT_IN_BUILDPACKS = ["heroku/python", "heroku/nodejs", "heroku/procfile"];
/** A build runs at most this many buildpacks (the host protocol's limit). */
export const MAX_BUILDPACKS = 10;

const GIT_URL_RE = /^(https?|git|ssh):\/\/[^\s]+$|^[\w.-]+@[\w.-]+:[^\s]+$/;
const HOST_PATH_RE = /^\/[^\0\s]*$/;

/**
 * A buildpack as the agent will run it. Built-in names (also as Heroku's
 * `urn:buildpack:heroku/python`), git URLs (with an optional `#ref`), or an absolute
 * path on the build host. Pure.
 */
export function normalizeBuildpack(input: string): BuildpackRef {
  const value = input.trim().replace(/^urn:buildpack:/, "");
  if (BUILT_IN_BUILDPACKS.includes(value)) return { url: value, name: value };
  if (value.length <= 2048 && GIT_URL_RE.test(value)) return { url: value, name: value };
  if (value.length <= 2048 && HOST_PATH_RE.test(value) && !value.split("/").includes("..")) return { url: value, name: value };
  throw invalidParams(
    `Buildpack ${JSON.stringify(input.slice(0, 100))} is not available: use ${BUILT_IN_BUILDPACKS.join(", ")}, a git URL, or an absolute path on the build host.`,
  );
}

/** Checks a list of buildpacks for one build or an app's installations. Pure. */
export function normalizeBuildpacks(inputs: string[]): BuildpackRef[] {
  if (inputs.length > MAX_BUILDPACKS) throw invalidParams(`An app may use at most ${MAX_BUILDPACKS} buildpacks.`);
  const refs = inputs.map(normalizeBuildpack);
  const seen = new Set<string>();
  for (const r of refs) {
    if (seen.has(r.url)) throw invalidParams(`Buildpack ${r.url} is listed twice.`);
    seen.add(r.url);
  }
  return refs;
}

/** Replaces an app's buildpack installations (an empty list returns it to detection). */
export async function setBuildpacks(db: Database, actor: Actor, app: AppRow, inputs: string[], requestId?: string): Promise<BuildpackRef[]> {
  const refs = normalizeBuildpacks(inputs);
  return db.transaction(async (tx) => {
    await tx.update(apps).set({ buildpacks: refs, updatedAt: sql`now()` }).where(eq(apps.id, app.id));
    await recordAudit(tx, { actor, action: "buildpacks.update", app, details: { buildpacks: refs.map((r) => r.url) }, requestId });
    return refs;
  });
}
