import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { localBuildIO, type LocalBuildRecord } from "../../src/agent/builder/io.ts";
import type { PythonBuildSettings } from "../../src/agent/builder/python.ts";
import { runBuild, type RunBuildOptions } from "../../src/agent/builder/runner.ts";
import type { LocalSource } from "../../src/agent/builder/source.ts";
import { appUser, ensureDynoUser, type DynoUser } from "../../src/agent/dyno-user.ts";
import { SandboxHost } from "../../src/agent/sandbox/index.ts";
import type { BuildResult, BuildSpec } from "../../src/protocol/build.ts";
import { tempDir } from "./support.ts";

const cleanups: (() => void)[] = [];

/** Removes every directory the helpers below made. */
export function cleanupBuildDirs(): void {
  for (const c of cleanups.splice(0)) c();
}

/** A directory with these files (executable when the name is under bin/ or ends in .sh). */
export function appDir(files: Record<string, string>, prefix = "dynoplane-app-"): string {
  const dir = tempDir(prefix);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, text);
    chmodSync(file, /(^|\/)bin\/|\.sh$/.test(name) ? 0o755 : 0o644);
  }
  return dir;
}

/** A temporary agent work dir (the dyno user can pass through it, as the agent makes it). */
export function workDir(): string {
  const dir = tempDir("dynoplane-buildwork-");
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A build spec for a test app; `over` changes anything. */
export function buildSpec(over: Partial<BuildSpec> = {}): BuildSpec {
  return {
    id: randomUUID(),
    app_id: randomUUID(),
    app_name: "build-test",
    kind: "tarball",
    commit: null,
    buildpacks: [],
    env: {},
    timeout_s: 120,
    max_slug_bytes: 500 * 1024 * 1024,
    ...over,
  };
}

/** What a local build produced, and the output lines it streamed. */
export interface Built {
  result: BuildResult;
  record: LocalBuildRecord;
  lines: string[];
  startedAt: number;
  endedAt: number;
}

let user: DynoUser | null | undefined;

/** Python builds from this host's packages, never asking an index (the default for tests). */
export const HOST_PACKAGES: PythonBuildSettings = { packages: "host", index: "http://index.invalid/simple" };

/** Runs a build on this host through the real runner, with a local source and local IO. */
export async function build(
  source: LocalSource | undefined,
  over: Partial<BuildSpec> = {},
  o: { work?: string; packs?: string[]; signal?: AbortSignal; maxUnpackedBytes?: number; python?: PythonBuildSettings } = {},
): Promise<Built> {
  user ??= await ensureDynoUser();
  const slugDir = tempDir("dynoplane-slugs-");
  cleanups.push(() => rmSync(slugDir, { recursive: true, force: true }));
  const { io, record } = localBuildIO({ slugDir, packs: o.packs });
  const startedAt = Date.now();
  const spec = buildSpec(over);
  const work = o.work ?? workDir();
  const sandboxes = await SandboxHost.create(work);
  const options: RunBuildOptions = {
    spec,
    workDir: work,
    user: appUser(user, spec.app_id),
    sandboxes,
    io,
    source,
    signal: o.signal,
    maxUnpackedBytes: o.maxUnpackedBytes,
    // Tests reach no index on the internet: without one of their own, the host's packages.
    python: o.python ?? HOST_PACKAGES,
  };
  const result = await runBuild(options).finally(() => sandboxes.close());
  return { result, record, lines: record.lines, startedAt, endedAt: Date.now() };
}

/** The member names of a slug. */
export function slugEntries(file: string): string[] {
  return execFileSync("tar", ["-tzf", file], { encoding: "utf8" }).split("\n").filter(Boolean);
}

/** One file of a slug. */
export function slugFile(file: string, member: string): string {
  return execFileSync("tar", ["-xzOf", file, member], { encoding: "utf8" });
}

/** Commits `files` to the git repository `dir` (created when missing); returns the commit. */
export function commit(dir: string, files: Record<string, string>, message = "change"): string {
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: dir, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir } }).trim();
  mkdirSync(dir, { recursive: true });
  if (!existsSync(path.join(dir, ".git"))) git("init", "--quiet", "--initial-branch=main");
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text, { mode: /(^|\/)bin\//.test(name) ? 0o755 : 0o644 });
  }
  git("add", "-A");
  git("-c", "user.name=dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-m", message);
  return git("rev-parse", "HEAD");
}

/** A pack of the commits in `revs` (e.g. `[b, "^a"]`), thin when asked, as a push sends it. */
export function pack(repo: string, revs: string[], out: string, thin = false): string {
  const data = execFileSync("git", ["pack-objects", "--revs", "--stdout", ...(thin ? ["--thin"] : [])], { cwd: repo, input: revs.join("\n") + "\n" });
  writeFileSync(out, data);
  return out;
}
