import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildSpec } from "../../protocol/build.ts";
import type { DynoUser } from "../dyno-user.ts";
import { killProcessesUnder } from "../process-group.ts";
import type { Sandbox, SandboxHost } from "../sandbox/index.ts";
import { runStep, type StepOptions, type StepResult } from "./exec.ts";

/** What a build's sandbox gets: room for the build dir and /tmp, memory, processes. */
export const BUILD_LIMITS = { diskMb: 4096, memoryMb: 2048, pids: 2048, cpuWeight: 100 };

/** The dynoplane checkout: its built-in buildpacks run with its node_modules (tsx). */
const PACKAGE_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * One build's directories and the way its steps run. In a sandbox (the default) every step
 * runs as the app's uid inside the build's own namespaces, cgroup and size-limited tmpfs,
 * and sees BUILD_DIR at /app (where the slug will run), CACHE_DIR at /cache, ENV_DIR,
 * HOME and cloned buildpacks under /build, and the app's git cache at /git. The fields
 * below are those paths as the steps see them; `host` has where they are on this machine.
 * `root` is the agent's own (source archives, the slug), out of every step's reach.
 */
export interface Workspace {
  root: string;
  buildDir: string;
  envDir: string;
  cacheDir: string;
  home: string;
  tmp: string;
  buildpacksDir: string;
  /** The app's git repository that packs are replayed into (a cache only). */
  gitDir: string;
  host: { buildDir: string; envDir: string; buildpacksDir: string; gitDir: string; cacheDir: string };
  user: DynoUser | null;
  sandbox: Sandbox | null;
  sandboxes: SandboxHost | null;
  /** Host directories the steps also see read-only (buildpacks on this host), at the same path. */
  readOnly: [string, string][];
}

/** Makes a directory owned by the build's user and closed to everyone else. */
async function userDir(dir: string, user: DynoUser | null, mode = 0o700): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  if (user) await fs.chown(dir, user.uid, user.gid);
  await fs.chmod(dir, mode);
}

/** Makes an agent-owned directory that the build's user may pass through but not list. */
async function passDir(dir: string, mode = 0o711): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode);
}

/** A per-app cache directory that belongs to that app's uid (an older one of another owner starts afresh). */
async function appCache(dir: string, user: DynoUser | null): Promise<void> {
  const st = await fs.lstat(dir).catch(() => null);
  if (st && (!st.isDirectory() || (user && st.uid !== user.uid))) await fs.rm(dir, { recursive: true, force: true });
  await userDir(dir, user);
}

/** Config var names that are safe as file names in ENV_DIR (a name like `../x` is not). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Creates a fresh workspace for `spec` (a leftover of the same build id is removed first). */
export async function createWorkspace(workDir: string, spec: BuildSpec, user: DynoUser | null, sandboxes: SandboxHost | null): Promise<Workspace> {
  const sandboxed = sandboxes !== null && user !== null;
  // Without a sandbox the build's user reaches its directories through these; with one, nobody but the agent does.
  const [pass, builds] = sandboxed ? [0o700, path.join(workDir, "builds")] : [0o711, path.join(workDir, "builds")];
  const cacheRoot = path.join(workDir, "build-cache");
  const gitRoot = path.join(workDir, "git-cache");
  await Promise.all([passDir(builds, pass), passDir(cacheRoot, pass), passDir(gitRoot, pass)]);
  const root = path.join(builds, spec.id);
  await fs.rm(root, { recursive: true, force: true });
  await passDir(root, pass);
  const cacheDir = path.join(cacheRoot, spec.app_id);
  const gitDir = path.join(gitRoot, `${spec.app_id}.git`);
  await appCache(cacheDir, user);
  await appCache(gitDir, user);

  let ws: Workspace;
  if (sandboxed) {
    const sandbox = await sandboxes.openSandbox({
      name: `build-${spec.id.slice(0, 8)}-${Date.now().toString(36)}`,
      user,
      lowerDir: null,
      diskMb: BUILD_LIMITS.diskMb,
      limits: { memoryMb: BUILD_LIMITS.memoryMb, pids: BUILD_LIMITS.pids, cpuWeight: BUILD_LIMITS.cpuWeight },
    });
    const aux = path.join(sandbox.fs.dir, "build");
    ws = {
      root,
      buildDir: "/app",
      envDir: "/build/env",
      cacheDir: "/cache",
      home: "/build/home",
      tmp: "/tmp",
      buildpacksDir: "/build/buildpacks",
      gitDir: "/git",
      host: { buildDir: sandbox.fs.appDir, envDir: path.join(aux, "env"), buildpacksDir: path.join(aux, "buildpacks"), gitDir, cacheDir },
      user,
      sandbox,
      sandboxes,
      readOnly: [],
    };
    await userDir(aux, user, 0o755);
  } else {
    const home = path.join(root, "home");
    ws = {
      root,
      buildDir: path.join(root, "app"),
      envDir: path.join(root, "env"),
      cacheDir,
      home,
      tmp: path.join(root, "tmp"),
      buildpacksDir: path.join(root, "buildpacks"),
      gitDir,
      host: { buildDir: path.join(root, "app"), envDir: path.join(root, "env"), buildpacksDir: path.join(root, "buildpacks"), gitDir, cacheDir },
      user,
      sandbox: null,
      sandboxes: null,
      readOnly: [],
    };
    for (const dir of [ws.buildDir, ws.home, ws.tmp]) await userDir(dir, user);
  }
  const homeHost = sandboxed ? path.join(ws.sandbox!.fs.dir, "build", "home") : ws.home;
  for (const dir of [ws.host.envDir, ws.host.buildpacksDir, homeHost]) await userDir(dir, user);
  for (const [name, value] of Object.entries(spec.env)) {
    if (!ENV_NAME.test(name)) continue;
    const file = path.join(ws.host.envDir, name);
    await fs.writeFile(file, value, { mode: 0o600 });
    if (user) await fs.chown(file, user.uid, user.gid);
  }
  // Git run as the build's user (cloning buildpacks) must read repositories owned by others.
  const gitconfig = path.join(homeHost, ".gitconfig");
  await fs.writeFile(gitconfig, "[safe]\n\tdirectory = *\n", { mode: 0o644 });
  if (user) await fs.chown(gitconfig, user.uid, user.gid);
  return ws;
}

/**
 * Runs one step of the build: in the build's sandbox when it has one (each step in a PID
 * namespace of its own, so nothing it starts outlives it), else as the build's user.
 */
export function workspaceStep(ws: Workspace, cmd: string, args: string[], o: Omit<StepOptions, "user" | "sandbox">): Promise<StepResult> {
  if (!ws.sandbox) return runStep(cmd, args, { ...o, user: ws.user });
  const readOnly: [string, string][] = [
    [path.join(PACKAGE_ROOT, "src", "agent", "buildpacks"), path.join(PACKAGE_ROOT, "src", "agent", "buildpacks")],
    [path.join(PACKAGE_ROOT, "node_modules"), path.join(PACKAGE_ROOT, "node_modules")],
    [path.join(PACKAGE_ROOT, "package.json"), path.join(PACKAGE_ROOT, "package.json")],
    ...ws.readOnly,
  ];
  const readWrite: [string, string][] = [
    [path.join(ws.sandbox.fs.dir, "build"), "/build"],
    [ws.host.cacheDir, "/cache"],
    [ws.host.gitDir, "/git"],
  ];
  return runStep(cmd, args, { ...o, user: ws.user, sandbox: { box: ws.sandbox, readOnly, readWrite } });
}

/** Ends whatever a build left running and deletes its directories (the caches stay). */
export async function removeWorkspace(ws: Workspace): Promise<void> {
  if (ws.sandbox) await ws.sandbox.dispose();
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
