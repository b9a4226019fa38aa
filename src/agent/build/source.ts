import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { BuildSpec, GitSource } from "../../protocol/build.ts";
import { unsafeEntry } from "../slug.ts";
import { BuildError, runChecked, runStep } from "./exec.ts";
import type { BuildIO } from "./io.ts";
import type { Workspace } from "./workspace.ts";

/** A source on this host, instead of one fetched from the control plane. */
export type LocalSource = { dir: string } | { tarball: string };

/** Git as the agent runs it: on its own repositories only, ignoring any user configuration. */
function gitEnv(ws: Workspace, gitDir: string): Record<string, string> {
  return { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: ws.root, GIT_CONFIG_NOSYSTEM: "1", GIT_DIR: gitDir, LANG: "C" };
}

/** Which packs the cache repository already holds, recorded next to it. */
async function appliedPacks(repo: string): Promise<GitSource["packs"]> {
  try {
    return JSON.parse(await fs.readFile(path.join(repo, "dynoplane-packs.json"), "utf8")) as GitSource["packs"];
  } catch {
    return [];
  }
}

/**
 * Replays the packs into `repo` with `git index-pack --fix-thin` (a thin pack's bases are in
 * earlier packs). A cache repository that recorded a prefix of the same packs only takes the
 * new ones; anything else starts it afresh. Throws unless `commit` is there afterwards.
 */
async function replay(ws: Workspace, io: BuildIO, repo: string, packs: GitSource["packs"], commit: string, signal: AbortSignal): Promise<void> {
  const env = gitEnv(ws, repo);
  let applied = await appliedPacks(repo);
  const prefix = applied.length <= packs.length && applied.every((p, i) => p.seq === packs[i]!.seq && p.size === packs[i]!.size);
  if (!prefix || !(await fs.stat(path.join(repo, "objects")).then(() => true, () => false))) {
    await fs.rm(repo, { recursive: true, force: true });
    await runChecked("git init", "git", ["init", "--bare", "--quiet", repo], { env, user: null, signal });
    applied = [];
  }
  for (const pack of packs.slice(applied.length)) {
    const stream = await io.pack(pack.seq, signal);
    await runChecked(`git index-pack (pack ${pack.seq})`, "git", ["index-pack", "--stdin", "--fix-thin"], { env, user: null, signal, stdin: stream, capture: true, cwd: repo });
    applied.push(pack);
    await fs.writeFile(path.join(repo, "dynoplane-packs.json"), JSON.stringify(applied));
  }
  const found = await runStep("git", ["cat-file", "-e", `${commit}^{commit}`], { env, user: null, signal });
  if (found.status !== 0) throw new BuildError(`commit ${commit} is not in the pushed packs`);
}

/** Checks every member name of a tar archive before anything is extracted. */
async function checkArchive(file: string, gzip: boolean, signal: AbortSignal): Promise<void> {
  const listing = await runChecked("listing the source archive", "tar", [gzip ? "-tzf" : "-tf", file], { env: { PATH: "/usr/bin:/bin" }, user: null, signal, capture: true, maxCapture: 64 * 1024 * 1024 });
  for (const name of listing.stdout.split("\n")) {
    const why = name && unsafeEntry(name);
    if (why) throw new BuildError(`the source archive was refused: ${why}: ${name}`);
  }
}

/** Extracts an archive into the build dir as the dyno user, so the tree is that user's. */
async function extract(ws: Workspace, file: string, gzip: boolean, signal: AbortSignal): Promise<void> {
  const stdin = createReadStream(file);
  const args = [gzip ? "-xzf" : "-xf", "-", "--no-same-owner", "--no-same-permissions", "-C", ws.buildDir];
  await runChecked("extracting the source", "tar", args, { env: { PATH: "/usr/bin:/bin" }, user: ws.user, signal, stdin });
}

/** A tarball with a single top-level directory (as GitHub makes them) holds the app inside it. */
async function hoistSingleDirectory(ws: Workspace, signal: AbortSignal): Promise<void> {
  const entries = await fs.readdir(ws.buildDir, { withFileTypes: true });
  if (entries.length !== 1 || !entries[0]!.isDirectory()) return;
  const inner = entries[0]!.name;
  const script = 'set -e; cd "$1"; mv "$2" .dynoplane-hoist; find .dynoplane-hoist -mindepth 1 -maxdepth 1 -exec mv -t . {} +; rmdir .dynoplane-hoist';
  await runChecked("unpacking the source", "/bin/sh", ["-c", script, "sh", ws.buildDir, inner], { env: { PATH: "/usr/bin:/bin" }, user: ws.user, signal });
}

/** Copies a directory on this host into the build dir (its .git left out), written as the dyno user. */
async function copyDir(ws: Workspace, dir: string, signal: AbortSignal): Promise<void> {
  const archive = path.join(ws.root, "source.tar");
  await runChecked("reading the source directory", "tar", ["-cf", archive, "--exclude=./.git", "-C", dir, "."], { env: { PATH: "/usr/bin:/bin" }, user: null, signal });
  await extract(ws, archive, false, signal);
}

/**
 * Puts the app's source into the build dir: a local directory or tarball when given, else
 * the tarball or the git packs of the build, fetched from the control plane.
 */
export async function fetchSource(ws: Workspace, spec: BuildSpec, io: BuildIO, signal: AbortSignal, local?: LocalSource): Promise<void> {
  if (local && "dir" in local) return copyDir(ws, local.dir, signal);
  if (local || spec.kind === "tarball") {
    const file = path.join(ws.root, "source.tgz");
    if (local) await fs.copyFile(local.tarball, file);
    else await io.tarball(file, signal);
    await checkArchive(file, true, signal);
    await extract(ws, file, true, signal);
    return hoistSingleDirectory(ws, signal);
  }
  if (!spec.commit) throw new BuildError("this git build names no commit");
  const { packs } = await io.gitSource(signal);
  if (packs.length === 0) throw new BuildError("this git build has no packs");
  let repo = ws.gitCache;
  try {
    await replay(ws, io, repo, packs, spec.commit, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    // The cache is only an optimisation: replay everything into a fresh repository.
    await fs.rm(repo, { recursive: true, force: true });
    repo = path.join(ws.root, "source.git");
    await replay(ws, io, repo, packs, spec.commit, signal);
  }
  const archive = path.join(ws.root, "source.tar");
  const out = await fs.open(archive, "w", 0o600);
  try {
    await new Promise<void>((resolve, reject) => {
      const git = spawn("git", ["archive", "--format=tar", spec.commit!], { env: gitEnv(ws, repo), stdio: ["ignore", out.fd, "pipe"], signal });
      let err = "";
      git.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-2000)));
      git.on("error", reject);
      git.on("close", (code) => (code === 0 ? resolve() : reject(new BuildError(`git archive failed: ${err.trim()}`))));
    });
  } finally {
    await out.close();
  }
  await checkArchive(archive, false, signal);
  await extract(ws, archive, false, signal);
}
