import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { SlugArchiveError, TarCheck } from "../../lib/tar-check.ts";
import { sizeLimits, type DesiredDyno } from "../../protocol/host.ts";
import { DynoProcess } from "../dyno-process.ts";
import { pickFreePort } from "../process-group.ts";
import type { Sandbox } from "../sandbox/index.ts";
import { removeInstanceDir, unpackSlug } from "../slug.ts";
import type { StepContext } from "./buildpacks.ts";
import { abortReason, BuildError } from "./exec.ts";
import { workspaceStep } from "./workspace.ts";

// The steps after the buildpacks: compressing the slug, and the release phase run on it.

/** Heroku's way of showing a slug's size: `12.3M`, or `84K` for small ones. */
export function formatSize(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 1) return `${mib.toFixed(1)}M`;
  return `${Math.max(1, Math.round(bytes / 1024))}K`;
}

/**
 * Compresses the build dir into a slug (`./app/...`) at `dest`. tar runs as the build's
 * user in its sandbox, so it can only read what the build could; the agent writes the
 * archive, stops it the moment it grows past `maxBytes`, and reads it through the same tar
 * check as an uploaded slug (Heroku's layout, nothing reaching outside ./app, at most
 * `maxUnpackedBytes` unpacked). Returns its size.
 */
export async function makeSlug(ctx: StepContext, dest: string, maxBytes: number, maxUnpackedBytes = maxBytes): Promise<number> {
  let size = 0;
  const stop = new AbortController();
  const check = new TarCheck(maxUnpackedBytes);
  const gunzip = createGunzip();
  let refused: Error | null = null;
  const refuse = (err: Error) => {
    refused ??=
      err instanceof SlugArchiveError
        ? new BuildError(err.kind === "too_large" ? `Compiled slug is too large: ${err.message}` : `The compiled slug was refused: ${err.message}`)
        : err;
    stop.abort(refused);
  };
  gunzip.on("data", (chunk: Buffer) => {
    try {
      check.push(chunk);
    } catch (err) {
      refuse(err as Error);
    }
  });
  gunzip.on("error", (err) => refuse(err));
  const checked = new Promise<void>((resolve) => gunzip.on("end", resolve).on("error", () => resolve()));
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size <= maxBytes) {
        gunzip.write(chunk);
        return done(null, chunk);
      }
      const err = new BuildError(`Compiled slug size is too large (max is ${formatSize(maxBytes)})`);
      stop.abort(err); // ends tar too: there is no point compressing on
      done(err);
    },
    flush(done) {
      gunzip.end();
      done();
    },
  });
  const written = pipeline(limit, createWriteStream(dest, { mode: 0o600 }));
  written.catch(() => {}); // observed below, after tar ends
  const args = ["-czf", "-", "--owner=0", "--group=0", "--numeric-owner", "./app"];
  const r = await workspaceStep(ctx.ws, "tar", args, {
    // The parent of the build dir: "/" in a sandbox, the workspace root without one.
    cwd: path.dirname(ctx.ws.buildDir),
    env: { PATH: "/usr/bin:/bin" },
    signal: AbortSignal.any([ctx.signal, stop.signal]),
    onLine: (text) => ctx.out.detail(text),
    stdoutTo: limit,
  }).catch((err: Error) => {
    throw refused ?? err;
  });
  if (!limit.writableEnded) limit.end();
  await written;
  await checked;
  if (refused) throw refused;
  if (r.status !== 0) throw new BuildError(`could not compress the slug (tar exit status ${r.status})`);
  try {
    check.end();
  } catch (err) {
    refuse(err as Error);
    throw refused!;
  }
  return size;
}

/** What the release phase needs besides the build's context. */
export interface ReleasePhase {
  slugFile: string;
  slugId: string;
  command: string;
}

/**
 * Runs the `release` process type once, like a one-off dyno: a fresh unpack of the slug,
 * the app's config plus PORT, DYNO=release.1 and HOME, as the app's uid, in a sandbox of
 * its own (where the build has one), its output in the build's. Resolves to its exit status.
 */
export async function runReleasePhase(ctx: StepContext, phase: ReleasePhase): Promise<number> {
  const { ws, spec } = ctx;
  const { dir, appDir } = await unpackSlug(phase.slugFile, ws.root, "release", ws.user);
  const dyno: DesiredDyno = {
    id: randomUUID(),
    instance: randomUUID(),
    app_id: spec.app_id,
    app_name: spec.app_name,
    name: "release.1",
    type: "release",
    command: phase.command,
    size: "Basic",
    memory_mb: 512,
    release_version: 0,
    slug_id: phase.slugId,
    env: spec.env,
    boot_timeout_s: 60,
  };
  const size = sizeLimits(dyno.size, dyno.memory_mb);
  let sandbox: Sandbox | null = null;
  try {
    if (ws.sandboxes && ws.user) {
      sandbox = await ws.sandboxes.openSandbox({
        name: `release-${spec.id.slice(0, 8)}`,
        user: ws.user,
        lowerDir: appDir,
        diskMb: size.diskMb,
        limits: { memoryMb: dyno.memory_mb, pids: size.pids, cpuWeight: size.cpuWeight },
      });
    }
    const proc = new DynoProcess({
      dyno,
      appDir: sandbox ? "/app" : appDir,
      port: sandbox ? 5000 : await pickFreePort(),
      user: ws.user,
      sandbox,
      bootTimeoutMs: 60_000,
      // The command's own lines, and platform errors; state changes would only be noise here.
      sink: (line) => {
        if (line.source === "app" || line.text.startsWith("Error")) ctx.out.detail(line.text);
      },
      onState: () => {},
    });
    const onAbort = () => void proc.stop(1_000);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    try {
      proc.start();
      await proc.exited;
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
    }
    if (ctx.signal.aborted) throw abortReason(ctx.signal);
    return proc.status ?? 1;
  } finally {
    await sandbox?.dispose();
    await removeInstanceDir(dir);
  }
}
