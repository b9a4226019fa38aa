import { createWriteStream } from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { SlugArchiveError, TarCheck } from "../../lib/tar-check.ts";
import type { StepContext } from "./buildpacks.ts";
import { BuildError } from "./exec.ts";
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
  // gzip's fastest level: about twice as fast as its default for a slug 15% larger, and a
  // deploy waits for it.
  const args = ["-cf", "-", "--use-compress-program=gzip -1", "--owner=0", "--group=0", "--numeric-owner", "./app"];
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
