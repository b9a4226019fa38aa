import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CompileError } from "../../lib/output.ts";
import semver from "semver";

/** The parts of package.json the Node.js buildpack reads. */
export interface PackageJson {
  scripts: Record<string, string>;
  engines: { node?: string; npm?: string };
  hasDependencies: boolean;
  hasDevDependencies: boolean;
}

function record(value: unknown, what: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CompileError(`package.json: ${what} must be an object`);
  for (const [k, v] of Object.entries(value)) if (typeof v !== "string") throw new CompileError(`package.json: ${what}.${k} must be a string`);
  return value as Record<string, string>;
}

/** Reads and checks the app's package.json; a broken one fails the build saying how. */
export function readPackageJson(buildDir: string): PackageJson {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path.join(buildDir, "package.json"), "utf8"));
  } catch (err) {
    throw new CompileError(`package.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new CompileError("package.json must hold a JSON object");
  const pkg = doc as Record<string, unknown>;
  const nonEmpty = (v: unknown) => typeof v === "object" && v !== null && Object.keys(v).length > 0;
  return {
    scripts: record(pkg.scripts, "scripts"),
    engines: record(pkg.engines, "engines"),
    hasDependencies: nonEmpty(pkg.dependencies) || nonEmpty(pkg.optionalDependencies),
    hasDevDependencies: nonEmpty(pkg.devDependencies),
  };
}

/**
 * Checks an `engines` range against the version the host has; the build fails when it
 * cannot be satisfied, since the host has no other version to offer.
 */
export function checkEngine(name: "node" | "npm", range: string | undefined, installed: string): void {
  if (range === undefined || range.trim() === "") return;
  if (semver.validRange(range) === null) throw new CompileError(`package.json engines.${name} "${range}" is not a valid semver range`);
  const ok = semver.satisfies(installed, range);
  if (!ok) throw new CompileError(`package.json engines.${name} asks for "${range}", but this host has ${name} ${installed} and no other version`);
}

/** The web process Heroku's Node.js buildpack declares: `npm start` when the app has a way to start. */
export function defaultWeb(buildDir: string, pkg: PackageJson): string | null {
  return pkg.scripts.start !== undefined || existsSync(path.join(buildDir, "server.js")) ? "npm start" : null;
}
