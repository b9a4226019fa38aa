import fs from "node:fs/promises";
import path from "node:path";
import type { BuildSpec } from "../../protocol/build.ts";
import type { DynoUser } from "../dyno-user.ts";
import { killProcessesUnder } from "../process-group.ts";

/**
 * One build's directories. Under `<workDir>/builds/<id>` (the agent's; searchable, not
 * listable) the dyno user owns `app` (BUILD_DIR, which becomes the slug's ./app), `env`
 * (ENV_DIR), `home`, `tmp` and `buildpacks`; the agent keeps its own files (the source
 * archive, the slug) next to them, out of the dyno user's reach. The build cache of each
 * app lives on across builds in `<workDir>/build-cache/<app id>`.
 */
export interface Workspace {
  root: string;
  buildDir: string;
  envDir: string;
  cacheDir: string;
  home: string;
  tmp: string;
  buildpacksDir: string;
  /** The agent's per-app git repository that packs are replayed into (a cache only). */
  gitCache: string;
  user: DynoUser | null;
}

/** Makes a directory owned by the dyno user and closed to everyone else. */
async function userDir(dir: string, user: DynoUser | null): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (user) await fs.chown(dir, user.uid, user.gid);
  await fs.chmod(dir, 0o700);
}

/** Makes an agent-owned directory that the dyno user may pass through but not list. */
async function passDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  await fs.chmod(dir, 0o711);
}

/** Config var names that are safe as file names in ENV_DIR (a name like `../x` is not). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Creates a fresh workspace for `spec` (a leftover of the same build id is removed first). */
export async function createWorkspace(workDir: string, spec: BuildSpec, user: DynoUser | null): Promise<Workspace> {
  const buildsDir = path.join(workDir, "builds");
  const cacheRoot = path.join(workDir, "build-cache");
  await Promise.all([passDir(buildsDir), passDir(cacheRoot), fs.mkdir(path.join(workDir, "git-cache"), { recursive: true, mode: 0o700 })]);
  const root = path.join(buildsDir, spec.id);
  await fs.rm(root, { recursive: true, force: true });
  await passDir(root);
  const ws: Workspace = {
    root,
    buildDir: path.join(root, "app"),
    envDir: path.join(root, "env"),
    cacheDir: path.join(cacheRoot, spec.app_id),
    home: path.join(root, "home"),
    tmp: path.join(root, "tmp"),
    buildpacksDir: path.join(root, "buildpacks"),
    gitCache: path.join(workDir, "git-cache", `${spec.app_id}.git`),
    user,
  };
  for (const dir of [ws.buildDir, ws.envDir, ws.cacheDir, ws.home, ws.tmp, ws.buildpacksDir]) await userDir(dir, user);
  for (const [name, value] of Object.entries(spec.env)) {
    if (!ENV_NAME.test(name)) continue;
    const file = path.join(ws.envDir, name);
    await fs.writeFile(file, value, { mode: 0o600 });
    if (user) await fs.chown(file, user.uid, user.gid);
  }
  // Git run as the dyno user (cloning buildpacks) must read repositories owned by others.
  const gitconfig = path.join(ws.home, ".gitconfig");
  await fs.writeFile(gitconfig, "[safe]\n\tdirectory = *\n", { mode: 0o644 });
  if (user) await fs.chown(gitconfig, user.uid, user.gid);
  return ws;
}

/** Ends whatever a build left running and deletes its directories (the cache stays). */
export async function removeWorkspace(ws: Workspace): Promise<void> {
  await killProcessesUnder(ws.root);
  await fs.rm(ws.root, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes workspaces of builds a previous agent run did not finish. */
export async function removeStaleWorkspaces(workDir: string): Promise<void> {
  const dir = path.join(workDir, "builds");
  await killProcessesUnder(dir);
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) await fs.rm(path.join(dir, name), { recursive: true, force: true });
}

/** The environment of every build step: a fixed PATH and the build's own HOME and TMPDIR. */
export function stepEnv(ws: Workspace, spec: BuildSpec): Record<string, string> {
  const nodeDir = path.dirname(process.execPath);
  const base = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return {
    // The agent's node last: buildpack helpers need a node, the host's come first.
    PATH: base.split(":").includes(nodeDir) ? base : `${base}:${nodeDir}`,
    LANG: "C.UTF-8",
    HOME: ws.home,
    TMPDIR: ws.tmp,
    STACK: "heroku-22",
    SOURCE_VERSION: spec.commit ?? "",
    REQUEST_ID: spec.id,
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
  };
}
