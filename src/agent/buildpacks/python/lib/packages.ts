import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { CompileError, detail, run, topic } from "../../lib/output.ts";
import type { Dependencies } from "./dependencies.ts";
import { type IndexPlan, indexEnv, redactUrl, scrub } from "./indexes.ts";

/**
 * Installing from a package index into the app's own virtualenv. pip resolves the
 * requirements into wheels (`pip wheel`: downloaded ones as they are, sdists built), the
 * wheels are installed from there without any index, and they stay in the app's build
 * cache with a note of what they were for. The next build with the same inputs (the
 * requirement files, the indexes, the interpreter) installs the noted wheels again and asks
 * no index at all; a build whose inputs changed lets pip reuse the cached wheels it can.
 */

/** What an index install needs. */
export interface IndexInstall {
  /** The app virtualenv's python, which packages are installed for. */
  python: string;
  /** The python of the build's pip (see `pipTool`). */
  pip: string;
  buildDir: string;
  cacheDir: string;
  tmpDir: string;
  interpreterVersion: string;
  deps: Dependencies;
  plan: IndexPlan;
  /** pip's base environment (no index settings). */
  env: NodeJS.ProcessEnv;
  /** Strings that never appear in the output (passwords inside index URLs). */
  secrets: string[];
}

/** The cache's record of the last install: the key of its inputs and the wheels it installed. */
interface Installed {
  key: string;
  wheels: string[];
}

const wheelsDir = (cacheDir: string) => path.join(cacheDir, "python", "wheels");
const recordFile = (cacheDir: string) => path.join(cacheDir, "python", "installed.json");

/** The index pip actually asks: a requirements file's own `--index-url` wins over the plan's. */
export const askedIndex = (o: Pick<IndexInstall, "deps" | "plan">) => o.deps.fileIndexUrl ?? o.plan.primary;

function inputsKey(o: IndexInstall): string {
  const { primary, extra, trusted } = o.plan;
  const material = JSON.stringify({ v: 1, python: o.interpreterVersion, inputs: o.deps.inputs, indexes: [primary, ...extra], trusted });
  return createHash("sha256").update(material).digest("hex");
}

/** The wheels of the last install when this one has the same inputs and all of them are still cached; else null. */
export async function cachedWheels(o: IndexInstall): Promise<string[] | null> {
  if (o.deps.local) return null;
  const text = await fs.readFile(recordFile(o.cacheDir), "utf8").catch(() => null);
  if (text === null) return null;
  let record: Installed;
  try {
    record = JSON.parse(text) as Installed;
  } catch {
    return null;
  }
  if (record.key !== inputsKey(o) || !Array.isArray(record.wheels)) return null;
  const files = record.wheels.map((w) => path.join(wheelsDir(o.cacheDir), path.basename(String(w))));
  for (const f of files) if (!(await fs.stat(f).catch(() => null))?.isFile()) return null;
  return files;
}

const pipLine = (o: IndexInstall) => (line: string) => scrub(line, o.secrets);

async function installWheels(o: IndexInstall, wheels: string[]): Promise<void> {
  if (!wheels.length) return;
  // The set is complete (pip resolved it): no index, no dependency resolution again.
  const args = ["-m", "pip", "--python", o.python, "install", "--no-index", "--no-deps", "--progress-bar", "off", "--", ...wheels];
  const result = await run(o.pip, args, { cwd: o.buildDir, env: o.env, transform: pipLine(o) });
  if (result.status !== 0) throw new CompileError(`pip could not install the resolved wheels (exit status ${result.status})`);
}

/** Installs the cached wheels of an unchanged set of requirements. */
export async function installCached(o: IndexInstall, wheels: string[]): Promise<void> {
  topic("Installing requirements from the build cache");
  detail(`(from ${o.deps.source}, unchanged since the last build: no package index is asked)`);
  await installWheels(o, wheels);
}

/** Why pip failed, in one line that names the requirement and the index. */
export function explainPipFailure(lines: string[], o: Pick<IndexInstall, "deps" | "plan">, status: number): string {
  const index = redactUrl(askedIndex(o));
  const more = o.plan.extra.length && !o.deps.fileIndexUrl ? ` (or ${o.plan.extra.map(redactUrl).join(", ")})` : "";
  const missing = new Set<string>();
  for (const line of lines) {
    const m = /No matching distribution found for (.+)$/.exec(line);
    if (m) missing.add(m[1]!.trim());
  }
  if (missing.size) {
    const unreachable = lines.find((l) => /Failed to establish a new connection|Could not fetch URL|NewConnectionError|ConnectTimeout/.test(l));
    const names = [...missing].join(", ");
    return `No version of ${names} is available from the package index ${index}${more}${unreachable ? ", which could not be reached" : ""} (required by ${o.deps.source})`;
  }
  const hashes = lines.findIndex((l) => /THESE PACKAGES DO NOT MATCH THE HASHES/.test(l));
  if (hashes >= 0) {
    const bad: string[] = [];
    for (let i = hashes + 1; i < lines.length; i++) {
      const m = /^\s+(\S+) from \S+/.exec(lines[i]!);
      if (!m) continue;
      const expected = /Expected (\w+) (\w+)/.exec(lines[i + 1] ?? "");
      const got = /Got\s+(\w+)/.exec(lines[i + 2] ?? "");
      bad.push(`${m[1]}${expected && got ? ` (expected ${expected[1]}:${expected[2]}, got ${expected[1]}:${got[1]})` : ""}`);
    }
    return `${bad.join(", ") || "a package"} does not match the hash${bad.length > 1 ? "es" : ""} in ${o.deps.source}: the downloaded file is not the one that was locked`;
  }
  const error = [...lines].reverse().find((l) => /^ERROR: /.test(l));
  return error
    ? `pip could not install the requirements from ${o.deps.source}: ${error.replace(/^ERROR: /, "")}`
    : `pip could not install the requirements from ${o.deps.source} (exit status ${status})`;
}

/** Resolves the requirements against the index into wheels, installs them, and keeps them in the cache. */
export async function installFromIndex(o: IndexInstall): Promise<void> {
  topic("Installing requirements with pip");
  const extra = o.plan.extra.length && !o.deps.fileIndexUrl ? ` and ${o.plan.extra.map(redactUrl).join(", ")}` : "";
  detail(`(from ${o.deps.source}; package index ${redactUrl(askedIndex(o))}${extra}, from ${o.deps.fileIndexUrl ? o.deps.source : o.plan.from})`);
  const cache = wheelsDir(o.cacheDir);
  await fs.mkdir(cache, { recursive: true });
  const stage = await fs.mkdtemp(path.join(o.tmpDir, "wheels-"));
  try {
    let file = o.deps.file;
    if (!file) {
      file = path.join(o.tmpDir, "requirements-from-pipfile.txt");
      await fs.writeFile(file, `${o.deps.requirements.join("\n")}\n`);
    }
    // Hash-checking mode takes each file only as the index serves it: a wheel built here from
    // an sdist earlier would not match, so the cache's wheels are left out of the candidates.
    const checked = o.deps.requirements.some((r) => r.includes("--hash=")) || (o.deps.file !== null && /--hash[=\s]/.test(o.deps.inputs));
    // --use-pep517: a setup.py project builds in pip's isolated environment from the index,
    // as newer pips always do, rather than with whatever the build's pip happens to have.
    const args = ["-m", "pip", "wheel", "--use-pep517", "--wheel-dir", stage, "--progress-bar", "off", ...(checked ? [] : ["--find-links", cache]), "-r", file];
    // The build's pip runs on the same interpreter as the app's, so it resolves for it.
    const result = await run(o.pip, args, { cwd: o.buildDir, env: { ...o.env, ...indexEnv(o.plan) }, transform: pipLine(o) });
    if (result.status !== 0) throw new CompileError(explainPipFailure(result.lines, o, result.status));
    const built = (await fs.readdir(stage)).filter((n) => n.endsWith(".whl")).sort();
    await installWheels(
      o,
      built.map((n) => path.join(stage, n)),
    );
    // Into the cache, replacing what the last install kept: the cache holds one install's wheels.
    const kept = new Set(built);
    for (const name of await fs.readdir(cache)) if (!kept.has(name)) await fs.rm(path.join(cache, name), { force: true });
    for (const name of built)
      await fs.rename(path.join(stage, name), path.join(cache, name)).catch(() => fs.copyFile(path.join(stage, name), path.join(cache, name)));
    const record: Installed = { key: o.deps.local ? "" : inputsKey(o), wheels: built };
    await fs.writeFile(recordFile(o.cacheDir), JSON.stringify(record));
  } finally {
    await fs.rm(stage, { recursive: true, force: true });
  }
}
