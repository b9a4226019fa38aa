import fs from "node:fs/promises";
import path from "node:path";
import { MAX_UNPACKED_SLUG_BYTES } from "../../lib/tar-check.ts";
import type { BuildResult, BuildSpec } from "../../protocol/build.ts";
import type { DynoUser } from "../dyno-user.ts";
import type { SandboxHost } from "../sandbox/index.ts";
import { builtinBuildpack, BUILTIN_BUILDPACKS, compile, detect, release, resolveBuildpack, type Buildpack, type StepContext } from "./buildpacks.ts";
import { abortReason, BuildError } from "./exec.ts";
import type { BuildIO } from "./io.ts";
import { BuildOutput } from "./output.ts";
import { describeProcessTypes, mergeProcessTypes, parseProcfile, ProcfileError, type ProcessTypes } from "./procfile.ts";
import { DEFAULT_PYTHON_SETTINGS, type PythonBuildSettings, pythonBuildEnv } from "./python.ts";
import { formatSize, makeSlug } from "./slug-steps.ts";
import { fetchSource, type LocalSource, packRepository } from "./source.ts";
import { createWorkspace, removeWorkspace, workspaceStep, type Workspace } from "./workspace.ts";

/** What one build needs. */
export interface RunBuildOptions {
  spec: BuildSpec;
  /** The agent's work dir; builds happen in `builds/<id>` below it. */
  workDir: string;
  /** Who buildpacks run as (the app's own uid); null: the agent's own user. */
  user: DynoUser | null;
  /** The sandboxes builds run in; null only where the operator turned them off. */
  sandboxes: SandboxHost | null;
  io: BuildIO;
  /** Build this instead of fetching the source from the control plane. */
  source?: LocalSource;
  /** What the slug may unpack to; the Slug API's limit unless an operator's test says less. */
  maxUnpackedBytes?: number;
  /** Cancels the build (the agent is stopping). */
  signal?: AbortSignal;
  /** Where Python packages come from on this host; by default the public index. */
  python?: PythonBuildSettings;
  log?: (message: string) => void;
}

function duration(seconds: number): string {
  return seconds % 60 === 0 ? `${seconds / 60} minute${seconds === 60 ? "" : "s"}` : `${seconds} seconds`;
}

/** Detection (python, nodejs, procfile) or the app's own list; each with the name it printed. */
async function selectBuildpacks(ctx: StepContext): Promise<{ bp: Buildpack; name: string }[]> {
  const { spec, out } = ctx;
  if (spec.buildpacks.length === 0) {
    out.topic("Determining which buildpack to use for this app");
    for (const name of BUILTIN_BUILDPACKS) {
      const bp = builtinBuildpack(name);
      const detected = await detect(bp, ctx);
      if (detected) return [{ bp, name: detected }];
    }
    throw new BuildError("No default language could be detected for this app: it needs a Procfile, requirements.txt, Pipfile, setup.py or package.json");
  }
  if (spec.buildpacks.length === 1) out.topic(`Using buildpack: ${spec.buildpacks[0]!.url}`);
  else {
    out.topic("Using buildpacks:");
    spec.buildpacks.forEach((b, i) => out.detail(`${i + 1}. ${b.url}`));
  }
  const selected: { bp: Buildpack; name: string }[] = [];
  for (const [i, ref] of spec.buildpacks.entries()) {
    const bp = await resolveBuildpack(ref.url, i, ctx);
    const name = await detect(bp, ctx);
    if (!name) throw new BuildError(`App not compatible with buildpack: ${ref.url}`);
    selected.push({ bp, name });
  }
  return selected;
}

/** The app's Procfile, read as the dyno user (it may be a link to anywhere); null without one. */
async function readProcfile(ctx: StepContext): Promise<ProcessTypes | null> {
  const { ws } = ctx;
  if (
    !(await fs.lstat(path.join(ws.host.buildDir, "Procfile")).then(
      () => true,
      () => false,
    ))
  )
    return null;
  const r = await workspaceStep(ws, "cat", ["--", "Procfile"], {
    cwd: ws.buildDir,
    env: { PATH: "/usr/bin:/bin" },
    signal: ctx.signal,
    capture: true,
    maxCapture: 1024 * 1024,
  });
  if (r.status !== 0) throw new BuildError("the Procfile could not be read");
  try {
    return parseProcfile(r.stdout);
  } catch (err) {
    if (err instanceof ProcfileError) throw new BuildError(err.message);
    throw err;
  }
}

/** The steps from source to uploaded slug; fills in `result` as it goes. */
async function build(ctx: StepContext, o: RunBuildOptions, result: BuildResult): Promise<void> {
  const { ws, spec, out, signal } = ctx;
  try {
    await fetchSource(ws, spec, o.io, signal, o.source);
  } catch (err) {
    if (err instanceof BuildError || signal.aborted) throw err;
    throw new BuildError(`Could not fetch the app's source: ${(err as Error).message}`);
  }
  const buildpacks = await selectBuildpacks(ctx);
  if (spec.buildpacks.length === 0) result.detected_buildpack = buildpacks[0]!.bp.url;
  let defaults: ProcessTypes = {};
  for (const { bp, name } of buildpacks) {
    result.buildpack_provided_description = name;
    out.topic(`${name} app detected`);
    await compile(bp, name, ctx);
  }
  for (const { bp } of buildpacks) defaults = { ...defaults, ...(await release(bp, ctx)) };

  const procfile = await readProcfile(ctx);
  const processTypes = mergeProcessTypes(defaults, procfile);
  out.topic("Discovering process types");
  for (const line of describeProcessTypes(procfile, defaults)) out.detail(line);
  result.process_types = processTypes;

  out.topic("Compressing...");
  const slugFile = path.join(ws.root, "slug.tgz");
  const size = await makeSlug(ctx, slugFile, spec.max_slug_bytes, o.maxUnpackedBytes ?? MAX_UNPACKED_SLUG_BYTES);
  out.detail(`Done: ${formatSize(size)}`);
  try {
    result.slug_id = await o.io.uploadSlug(slugFile, size, processTypes, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new BuildError(`Could not upload the slug: ${(err as Error).message}`);
  }
  // What `heroku git:clone` gets. The app is built either way: a clone is a convenience.
  if (spec.kind === "git" && spec.commit && !o.source) {
    try {
      await o.io.uploadRepository(await packRepository(ws, spec.commit, signal), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      o.log?.(`build ${spec.id}: the repository for git clone was not stored: ${(err as Error).message}`);
    }
  }
}

/** Posts the result, retrying: without it the control plane would wait until its own timeout. */
async function report(io: BuildIO, result: BuildResult, log: (m: string) => void): Promise<void> {
  for (const delay of [500, 2_000, 5_000, 0]) {
    try {
      return await io.result(result);
    } catch (err) {
      log(`reporting build result failed: ${(err as Error).message}`);
      if (delay) await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Runs one build from source to result, as Heroku's classic builds go: fetch the source,
 * detect and run the buildpacks (output streamed live), read the Procfile, compress and
 * upload the slug, report (the control plane runs the release phase, if any, as a one-off dyno). Every failure becomes a failed result
 * with a one-line reason; the build's directories are gone afterwards, the cache stays.
 */
export async function runBuild(o: RunBuildOptions): Promise<BuildResult> {
  const { spec } = o;
  const log = o.log ?? (() => {});
  const out = new BuildOutput(
    (lines) => o.io.output(lines),
    (err) => log(`build ${spec.id}: output lost: ${err.message}`),
  );
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new BuildError(`Build timed out: it ran longer than the limit of ${duration(spec.timeout_s)}`)),
    spec.timeout_s * 1000,
  );
  const signal = o.signal ? AbortSignal.any([o.signal, timeout.signal]) : timeout.signal;
  const result: BuildResult = { status: "failed", slug_id: null, error: null, process_types: {}, buildpack_provided_description: null };
  let ws: Workspace | undefined;
  try {
    ws = await createWorkspace(o.workDir, spec, o.user, o.sandboxes);
    await build({ ws, spec, out, signal, compileEnv: pythonBuildEnv(o.python ?? DEFAULT_PYTHON_SETTINGS) }, o, result);
    result.status = "succeeded";
  } catch (caught) {
    // Whatever a step threw when cut short, the reason is the time limit or the agent stopping.
    const err = signal.aborted ? abortReason(signal) : caught;
    const known = err instanceof BuildError;
    if (!known) log(`build ${spec.id} failed: ${(err as Error)?.stack ?? String(err)}`);
    result.error = (known ? err.message : `The build failed on the host: ${(err as Error)?.message ?? String(err)}`).slice(0, 2048);
    // A buildpack that failed usually said why already, in the same words.
    if (!out.recent.includes(` !     ${result.error}`)) out.warn(result.error);
    if (result.buildpack_provided_description && !result.slug_id) out.warn(`Push rejected, failed to compile ${result.buildpack_provided_description} app.`);
  } finally {
    clearTimeout(timer);
    await out.close();
    if (ws) await removeWorkspace(ws).catch((err: Error) => log(`removing build ${spec.id}: ${err.message}`));
  }
  await report(o.io, result, log);
  return result;
}
