import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { BuildSpec } from "../../protocol/build.ts";
import { BuildError } from "./exec.ts";
import type { BuildOutput } from "./output.ts";
import type { ProcessTypes } from "./procfile.ts";
import { parseReleaseYaml, ReleaseYamlError } from "./release-yaml.ts";
import { stepEnv, workspaceStep, type Workspace } from "./workspace.ts";

/** The built-in buildpacks, in the order detection tries them. */
export const BUILTIN_BUILDPACKS = ["python", "nodejs", "procfile"] as const;
const BUILTIN_DIR = fileURLToPath(new URL("../buildpacks/", import.meta.url));

/** A buildpack ready to run: its directory and how the user named it. */
export interface Buildpack {
  /** Where build steps see it. */
  dir: string;
  /** Where it is on this host (a cloned one lives in the build's sandbox). */
  hostDir: string;
  url: string;
}

/** What one build step of a buildpack needs. */
export interface StepContext {
  ws: Workspace;
  spec: BuildSpec;
  out: BuildOutput;
  signal: AbortSignal;
  /** What the host tells `bin/compile` besides the usual environment (its Python settings). */
  compileEnv?: Record<string, string>;
}

/** The directory of a built-in buildpack (`heroku/python` → src/agent/buildpacks/python). */
export function builtinBuildpack(name: string): Buildpack {
  const dir = path.join(BUILTIN_DIR, name);
  return { dir, hostDir: dir, url: `heroku/${name}` };
}

const isDir = (p: string) =>
  fs.stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );

/** Whether `dir` and every directory above it can be passed through by anyone (its files keep their own modes). */
async function openToAll(dir: string): Promise<boolean> {
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const st = await fs.stat(p).catch(() => null);
    if (!st || (st.mode & 0o001) === 0) return false;
    if (p === path.dirname(p)) return true;
  }
}

/**
 * Makes a buildpack of the app's list runnable: `heroku/<name>` is built in, a directory on
 * this host with a `bin/compile` is used where it is, and anything else is a git URL
 * (`#ref` picks a branch or tag), cloned as the dyno user, so neither a path nor a URL
 * reaches anything that user could not read anyway.
 */
export async function resolveBuildpack(url: string, index: number, ctx: StepContext): Promise<Buildpack> {
  const builtin = /^(?:urn:buildpack:)?heroku\/([a-z0-9-]+)$/.exec(url);
  if (builtin) {
    if (!(BUILTIN_BUILDPACKS as readonly string[]).includes(builtin[1]!)) {
      throw new BuildError(`${url} is not available on this host; the built-in buildpacks are ${BUILTIN_BUILDPACKS.map((b) => `heroku/${b}`).join(", ")}`);
    }
    return builtinBuildpack(builtin[1]!);
  }
  if (path.isAbsolute(url) && (await isDir(path.join(url, "bin")))) {
    // A build sees a directory of this host only when anyone on the host could read it anyway.
    if (!(await openToAll(url))) throw new BuildError(`${url} is not readable by everyone on this host, so builds cannot use it as a buildpack`);
    ctx.ws.readOnly.push([url, url]);
    return { dir: url, hostDir: url, url };
  }
  const [repo = "", ref] = url.split("#");
  const dest = path.join(ctx.ws.buildpacksDir, String(index));
  const local = path.isAbsolute(repo);
  // A repository on this host is cloned from inside the build too, so it must be shown to it.
  const hostRepo = local ? repo : repo.startsWith("file://") ? decodeURIComponent(new URL(repo).pathname) : null;
  if (hostRepo && (await isDir(hostRepo))) {
    if (!(await openToAll(hostRepo))) throw new BuildError(`Failed to download buildpack ${url}: it is not readable by everyone on this host`);
    ctx.ws.readOnly.push([hostRepo, hostRepo]);
  }
  const args = ["clone", "--quiet", ...(local ? [] : ["--depth", "1"]), ...(ref ? ["--branch", ref] : []), "--", repo, dest];
  const lines: string[] = [];
  const cloned = await workspaceStep(ctx.ws, "git", args, { env: stepEnv(ctx.ws, ctx.spec), signal: ctx.signal, onLine: (l) => lines.push(l) });
  if (cloned.status !== 0)
    throw new BuildError(
      `Failed to download buildpack ${url}: ${
        lines
          .filter((l) => l.trim())
          .slice(-2)
          .join(" ") || `git exit status ${cloned.status}`
      }`,
    );
  return { dir: dest, hostDir: path.join(ctx.ws.host.buildpacksDir, String(index)), url };
}

/** Streams a step's lines into the build output. */
const show = (ctx: StepContext) => (text: string) => ctx.out.line(text);

/** Runs `bin/detect BUILD_DIR`; the name it prints when the buildpack applies, else null. */
export async function detect(bp: Buildpack, ctx: StepContext): Promise<string | null> {
  const bin = path.join(bp.dir, "bin", "detect");
  if (
    !(await fs.access(path.join(bp.hostDir, "bin", "detect")).then(
      () => true,
      () => false,
    ))
  )
    return path.basename(bp.url.split("#")[0]!.replace(/\.git$/, ""));
  const r = await workspaceStep(ctx.ws, bin, [ctx.ws.buildDir], {
    cwd: ctx.ws.buildDir,
    env: stepEnv(ctx.ws, ctx.spec),
    signal: ctx.signal,
    capture: true,
    maxCapture: 4096,
    onLine: show(ctx),
  });
  if (r.status !== 0) return null;
  return r.stdout.split("\n")[0]!.trim().slice(0, 255) || path.basename(bp.url);
}

/**
 * Runs `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` with its output streamed. On failure the
 * error is the buildpack's own last ` !` line (Heroku's way of saying why), or a generic one.
 */
export async function compile(bp: Buildpack, name: string, ctx: StepContext): Promise<void> {
  const bin = path.join(bp.dir, "bin", "compile");
  // Only a ` !` line among the last few counts: an early warning is not why it failed.
  let reason: { text: string; at: number } | null = null;
  let count = 0;
  const onLine = (text: string) => {
    ctx.out.line(text);
    const m = /^ ! {5}(.*\S)/.exec(text);
    if (m) reason = { text: m[1]!, at: count };
    count++;
  };
  const { ws } = ctx;
  const env = { ...stepEnv(ws, ctx.spec), ...ctx.compileEnv };
  const r = await workspaceStep(ws, bin, [ws.buildDir, ws.cacheDir, ws.envDir], { cwd: ws.buildDir, env, signal: ctx.signal, onLine });
  if (r.status === 126 || r.status === 127) throw new BuildError(`${bp.url} has no runnable bin/compile (exit status ${r.status})`);
  const last = reason as { text: string; at: number } | null;
  if (r.status !== 0) throw new BuildError(last && count - last.at <= 5 ? last.text : `Failed to compile ${name} app (bin/compile exit status ${r.status})`);
}

/** Runs `bin/release BUILD_DIR` (optional) and returns its default process types. */
export async function release(bp: Buildpack, ctx: StepContext): Promise<ProcessTypes> {
  const bin = path.join(bp.dir, "bin", "release");
  if (
    !(await fs.access(path.join(bp.hostDir, "bin", "release")).then(
      () => true,
      () => false,
    ))
  )
    return {};
  const { ws } = ctx;
  const r = await workspaceStep(ws, bin, [ws.buildDir], {
    cwd: ws.buildDir,
    env: stepEnv(ws, ctx.spec),
    signal: ctx.signal,
    capture: true,
    maxCapture: 256 * 1024,
    onLine: show(ctx),
  });
  if (r.status !== 0) throw new BuildError(`bin/release of ${bp.url} failed (exit status ${r.status})`);
  try {
    return parseReleaseYaml(r.stdout).defaultProcessTypes;
  } catch (err) {
    if (err instanceof ReleaseYamlError) throw new BuildError(`${bp.url}: ${err.message}`);
    throw err;
  }
}
