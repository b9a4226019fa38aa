import { constants as fsConstants, createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { BuildSpec, GitSource } from "../../protocol/build.ts";
import { unsafeEntry } from "../slug.ts";
import { BuildError, runChecked, type StepOptions } from "./exec.ts";
import type { BuildIO, RepositoryPack } from "./io.ts";
import { workspaceStep, type Workspace } from "./workspace.ts";

/** A source on this host, instead of one fetched from the control plane. */
export type LocalSource = { dir: string } | { tarball: string };

/** Git as builds run it: on the app's repository only, ignoring any user configuration. */
function gitEnv(ws: Workspace, gitDir: string): Record<string, string> {
  return { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: ws.home, GIT_CONFIG_NOSYSTEM: "1", GIT_DIR: gitDir, LANG: "C" };
}

/** A step of fetching the source, run like every build step (as the app's uid, sandboxed); fails with `what`. */
async function step(ws: Workspace, what: string, cmd: string, args: string[], o: Omit<StepOptions, "user" | "sandbox">) {
  const tail: string[] = [];
  const r = await workspaceStep(ws, cmd, args, { ...o, onLine: (t) => (tail.push(t), tail.length > 5 && tail.shift()) });
  if (r.status !== 0) throw new BuildError(`${what} failed (exit status ${r.status})${tail.length ? `: ${tail.join(" / ")}` : ""}`);
  return r;
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
 * Replays the packs into the app's git cache with `git index-pack --fix-thin` (a thin pack's
 * bases are in earlier packs), as the app's uid. A cache that recorded a prefix of the same
 * packs only takes the new ones; anything else starts it afresh. `fresh` empties it first.
 * Throws unless `commit` is there afterwards.
 */
async function replay(ws: Workspace, io: BuildIO, packs: GitSource["packs"], commit: string, signal: AbortSignal, fresh: boolean): Promise<void> {
  const env = gitEnv(ws, ws.gitDir);
  const record = path.join(ws.host.gitDir, "dynoplane-packs.json");
  let applied = fresh ? [] : await appliedPacks(ws.host.gitDir);
  const prefix = applied.length <= packs.length && applied.every((p, i) => p.seq === packs[i]!.seq && p.size === packs[i]!.size);
  if (
    fresh ||
    !prefix ||
    !(await fs.stat(path.join(ws.host.gitDir, "objects")).then(
      () => true,
      () => false,
    ))
  ) {
    // Emptied by the app's own uid: the directory itself stays the agent's bind mount point.
    await step(ws, "clearing the git cache", "/bin/sh", ["-c", 'find "$1" -mindepth 1 -delete', "sh", ws.gitDir], { env, signal });
    await step(ws, "git init", "git", ["init", "--bare", "--quiet", ws.gitDir], { env, signal });
    applied = [];
  }
  for (const pack of packs.slice(applied.length)) {
    const stream = await io.pack(pack.seq, signal);
    await step(ws, `git index-pack (pack ${pack.seq})`, "git", ["index-pack", "--stdin", "--fix-thin"], {
      env,
      signal,
      stdin: stream,
      capture: true,
      cwd: ws.gitDir,
    });
    applied.push(pack);
    await fs.writeFile(record, JSON.stringify(applied), { mode: 0o644 });
  }
  const found = await workspaceStep(ws, "git", ["cat-file", "-e", `${commit}^{commit}`], { env, signal });
  if (found.status !== 0) throw new BuildError(`commit ${commit} is not in the pushed packs`);
}

/** Checks every member name of a tar archive (fed on stdin) before anything is extracted. */
async function checkArchive(ws: Workspace, file: string, gzip: boolean, signal: AbortSignal): Promise<void> {
  const listing = await step(ws, "listing the source archive", "tar", [gzip ? "-tzf" : "-tf", "-"], {
    env: { PATH: "/usr/bin:/bin" },
    signal,
    stdin: createReadStream(file),
    capture: true,
    maxCapture: 64 * 1024 * 1024,
  });
  for (const name of listing.stdout.split("\n")) {
    const why = name && unsafeEntry(name);
    if (why) throw new BuildError(`the source archive was refused: ${why}: ${name}`);
  }
}

/** Extracts an archive (fed on stdin) into the build dir as the build's user, so the tree is that user's. */
async function extract(ws: Workspace, file: string, gzip: boolean, signal: AbortSignal): Promise<void> {
  const args = [gzip ? "-xzf" : "-xf", "-", "--no-same-owner", "--no-same-permissions", "-C", ws.buildDir];
  await step(ws, "extracting the source", "tar", args, { env: { PATH: "/usr/bin:/bin" }, signal, stdin: createReadStream(file) });
}

/** A tarball with a single top-level directory (as GitHub makes them) holds the app inside it. */
async function hoistSingleDirectory(ws: Workspace, signal: AbortSignal): Promise<void> {
  const entries = await fs.readdir(ws.host.buildDir, { withFileTypes: true });
  if (entries.length !== 1 || !entries[0]!.isDirectory()) return;
  const inner = entries[0]!.name;
  const script = 'set -e; cd "$1"; mv "$2" .dynoplane-hoist; find .dynoplane-hoist -mindepth 1 -maxdepth 1 -exec mv -t . {} +; rmdir .dynoplane-hoist';
  await step(ws, "unpacking the source", "/bin/sh", ["-c", script, "sh", ws.buildDir, inner], { env: { PATH: "/usr/bin:/bin" }, signal });
}

/** Copies a directory on this host (the operator's) into the build dir, its .git left out. */
async function copyDir(ws: Workspace, dir: string, signal: AbortSignal): Promise<void> {
  const archive = path.join(ws.root, "source.tar");
  await runChecked("reading the source directory", "tar", ["-cf", archive, "--exclude=./.git", "-C", dir, "."], {
    env: { PATH: "/usr/bin:/bin" },
    user: null,
    signal,
  });
  await extract(ws, archive, false, signal);
}

/**
 * Puts the app's source into the build dir: a local directory or tarball when given, else
 * the tarball or the git packs of the build, fetched from the control plane. Everything
 * that reads the tenant's bytes (tar, git) runs as the app's uid in the build's sandbox.
 */
export async function fetchSource(ws: Workspace, spec: BuildSpec, io: BuildIO, signal: AbortSignal, local?: LocalSource): Promise<void> {
  if (local && "dir" in local) return copyDir(ws, local.dir, signal);
  if (local || spec.kind === "tarball") {
    const file = path.join(ws.root, "source.tgz");
    if (local) await fs.copyFile(local.tarball, file);
    else await io.tarball(file, signal);
    await checkArchive(ws, file, true, signal);
    await extract(ws, file, true, signal);
    return hoistSingleDirectory(ws, signal);
  }
  if (!spec.commit) throw new BuildError("this git build names no commit");
  const { packs } = await io.gitSource(signal);
  if (packs.length === 0) throw new BuildError("this git build has no packs");
  try {
    await replay(ws, io, packs, spec.commit, signal, false);
  } catch (err) {
    if (signal.aborted) throw err;
    // The cache is only an optimisation: replay everything into an emptied one.
    await replay(ws, io, packs, spec.commit, signal, true);
  }
  // The archive lands in the build's /tmp (its size counts against the build's disk), then unpacks into /app.
  const env = gitEnv(ws, ws.gitDir);
  const script =
    'set -e; git archive --format=tar -o "$1/source.tar" "$2"; tar -xf "$1/source.tar" --no-same-owner --no-same-permissions -C "$3"; rm -f "$1/source.tar"';
  const listing = await step(ws, "git archive", "/bin/sh", ["-c", `git archive --format=tar "$1" | tar -tf -`, "sh", spec.commit], {
    env,
    signal,
    capture: true,
    maxCapture: 64 * 1024 * 1024,
  });
  for (const name of listing.stdout.split("\n")) {
    const why = name && unsafeEntry(name);
    if (why) throw new BuildError(`the pushed tree was refused: ${why}: ${name}`);
  }
  await step(ws, "checking out the pushed commit", "/bin/sh", ["-c", script, "sh", ws.tmp, spec.commit, ws.buildDir], { env, signal });
}

/**
 * The pushed commit and everything it reaches as one pack with its index, for `git clone`
 * from the control plane: made by git as the app's uid in the build's sandbox, in the git
 * cache, and copied out here without following links and only when the app's uid owns the
 * file (the cache is the tenant's to write). Files of an earlier build go first.
 */
export async function packRepository(ws: Workspace, commit: string, signal: AbortSignal): Promise<RepositoryPack> {
  const base = "dynoplane-clone";
  const script = 'set -e; cd "$1"; rm -f "$2"-*; printf "%s\\n" "$3" | git pack-objects --revs -q "$2"';
  const r = await step(ws, "packing the repository", "/bin/sh", ["-c", script, "sh", ws.gitDir, base, commit], {
    env: gitEnv(ws, ws.gitDir),
    signal,
    capture: true,
  });
  const sha = r.stdout.trim();
  if (!/^[0-9a-f]{40}$/.test(sha)) throw new BuildError(`git pack-objects named no pack: ${JSON.stringify(sha.slice(0, 80))}`);
  const name = `pack-${sha}`;
  const out = { name, pack: path.join(ws.root, `${name}.pack`), idx: path.join(ws.root, `${name}.idx`) };
  for (const ext of ["pack", "idx"] as const) await copyOwned(path.join(ws.host.gitDir, `${base}-${sha}.${ext}`), out[ext], ws.user?.uid);
  return out;
}

/** Copies a file the tenant wrote: a regular file, not a link, owned by `uid` when one is given. */
async function copyOwned(from: string, to: string, uid: number | undefined): Promise<void> {
  const handle = await fs.open(from, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  try {
    const st = await handle.stat();
    if (!st.isFile() || (uid !== undefined && st.uid !== uid)) throw new BuildError(`${path.basename(from)} is not a file the build made`);
    await pipeline(handle.createReadStream({ autoClose: false }), createWriteStream(to, { mode: 0o600 }));
  } finally {
    await handle.close();
  }
}
