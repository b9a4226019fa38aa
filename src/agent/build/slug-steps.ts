import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { DesiredDyno } from "../../protocol/host.ts";
import { DynoProcess } from "../dyno-process.ts";
import { pickFreePort } from "../process-group.ts";
import { removeInstanceDir, unpackSlug } from "../slug.ts";
import type { StepContext } from "./buildpacks.ts";
import { abortReason, BuildError, runStep } from "./exec.ts";

// The steps after the buildpacks: compressing the slug, and the release phase run on it.

/** Heroku's way of showing a slug's size: `12.3M`, or `84K` for small ones. */
export function formatSize(bytes: number): string {
  const mib = bytes / (1024 * 1024);
  if (mib >= 1) return `${mib.toFixed(1)}M`;
  return `${Math.max(1, Math.round(bytes / 1024))}K`;
}

/**
 * Compresses the build dir into a slug (`./app/...`) at `dest`. tar runs as the dyno user,
 * so it can only read what the build could; the agent writes the archive and stops it the
 * moment it grows past `maxBytes`. Returns its size.
 */
export async function makeSlug(ctx: StepContext, dest: string, maxBytes: number): Promise<number> {
  let size = 0;
  const stop = new AbortController();
  const limit = new Transform({
    transform(chunk: Buffer, _enc, done) {
      size += chunk.length;
      if (size <= maxBytes) return done(null, chunk);
      const err = new BuildError(`Compiled slug size is too large (max is ${formatSize(maxBytes)})`);
      stop.abort(err); // ends tar too: there is no point compressing on
      done(err);
    },
  });
  const written = pipeline(limit, createWriteStream(dest, { mode: 0o600 }));
  written.catch(() => {}); // observed below, after tar ends
  // cwd rather than -C: the dyno user may pass through the workspace root but not open it.
  const args = ["-czf", "-", "--owner=0", "--group=0", "--numeric-owner", "./app"];
  const r = await runStep("tar", args, {
    cwd: ctx.ws.root,
    env: { PATH: "/usr/bin:/bin" },
    user: ctx.ws.user,
    signal: AbortSignal.any([ctx.signal, stop.signal]),
    onLine: (text) => ctx.out.detail(text),
    stdoutTo: limit,
  });
  if (!limit.writableEnded) limit.end();
  await written;
  if (r.status !== 0) throw new BuildError(`could not compress the slug (tar exit status ${r.status})`);
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
 * the app's config plus PORT, DYNO=release.1 and HOME, as the dyno user, its output in the
 * build's. Resolves to its exit status.
 */
export async function runReleasePhase(ctx: StepContext, phase: ReleasePhase): Promise<number> {
  const { ws, spec } = ctx;
  const { dir, appDir } = await unpackSlug(phase.slugFile, ws.root, "release", ws.user);
  try {
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
    const proc = new DynoProcess({
      dyno,
      appDir,
      port: await pickFreePort(),
      user: ws.user,
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
    await removeInstanceDir(dir);
  }
}
