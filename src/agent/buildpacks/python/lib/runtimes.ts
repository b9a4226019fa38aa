import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { Interpreter, RequestedPython } from "../../lib/python-runtime.ts";
import { CompileError, detail, topic } from "../../lib/output.ts";
import { redactUrl } from "./indexes.ts";

/**
 * Python runtimes from the host's runtime source (`dynoplane host --python-runtimes URL`),
 * laid out by version the way Heroku serves its own:
 *
 *   URL/versions.txt                 the full versions it has, one per line
 *   URL/python-3.11.7.tar.gz         a relocatable CPython tree (bin/python3 at its top, or in one directory)
 *   URL/python-3.11.7.tar.gz.sha256  its SHA-256, in hex (as `sha256sum` prints it)
 *
 * A runtime is verified against its checksum, kept in the app's build cache, and unpacked
 * as the app's own Python (`.heroku/python`), so the slug carries its interpreter.
 */

const exec = promisify(execFile);
const VERSION = /^3\.\d+\.\d+$/;

/** The newest full version of `available` that serves `requested`; null when none does. */
export function pickVersion(requested: RequestedPython, available: string[]): string | null {
  const parts = (v: string) => v.split(".").map(Number) as [number, number, number];
  const matching = available.filter((v) => {
    const [a, b, c] = parts(v);
    return VERSION.test(v) && a === requested.major && b === requested.minor && (requested.patch === null || c === requested.patch);
  });
  return matching.sort((x, y) => parts(y)[2] - parts(x)[2])[0] ?? null;
}

async function fetchOk(url: string, what: string): Promise<Response | null> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    throw new CompileError(`could not fetch ${what} from the runtime source ${redactUrl(url)}: ${e.cause?.code ?? e.message}`);
  }
  if (res.status === 404) {
    await res.body?.cancel().catch(() => {});
    return null;
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    throw new CompileError(`the runtime source answered ${res.status} for ${what} (${redactUrl(url)})`);
  }
  return res;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The tarball of `version`, from the cache when it is there and still matches its checksum, else downloaded and checked. */
async function tarball(base: string, version: string, cacheDir: string): Promise<string | null> {
  const dir = path.join(cacheDir, "python", "runtimes");
  const file = path.join(dir, `python-${version}.tar.gz`);
  const sumFile = `${file}.sha256`;
  const kept = await fs.readFile(sumFile, "utf8").catch(() => null);
  if (kept && (await fs.stat(file).catch(() => null)) && (await sha256Of(file)) === kept.trim()) {
    detail(`(python-${version} from the build cache)`);
    return file;
  }
  const url = `${base}/python-${version}.tar.gz`;
  const sumRes = await fetchOk(`${url}.sha256`, `the checksum of python-${version}`);
  if (!sumRes) return null;
  const expected = /^\s*([0-9a-f]{64})\b/i.exec(await sumRes.text())?.[1]?.toLowerCase();
  if (!expected) throw new CompileError(`the runtime source's checksum of python-${version} is not a SHA-256 (${redactUrl(url)}.sha256)`);
  const res = await fetchOk(url, `python-${version}`);
  if (!res?.body) return null;
  await fs.mkdir(dir, { recursive: true });
  const partial = `${file}.partial`;
  await fs.writeFile(partial, res.body as unknown as AsyncIterable<Uint8Array>);
  const got = await sha256Of(partial);
  if (got !== expected) {
    await fs.rm(partial, { force: true });
    throw new CompileError(
      `python-${version} from the runtime source does not match its checksum (expected sha256:${expected}, got sha256:${got}); it was not used`,
    );
  }
  await fs.rename(partial, file);
  await fs.writeFile(sumFile, `${expected}\n`);
  detail(`(downloaded ${redactUrl(url)}, ${(await fs.stat(file)).size} bytes, sha256 verified)`);
  return file;
}

/** Where the unpacked tree has `bin/python3`: at its top, or in its one directory. */
async function treeRoot(dir: string): Promise<string | null> {
  const has = (d: string) =>
    fs.access(path.join(d, "bin", "python3")).then(
      () => true,
      () => false,
    );
  if (await has(dir)) return dir;
  const entries = await fs.readdir(dir, { withFileTypes: true });
  if (entries.length === 1 && entries[0]!.isDirectory() && (await has(path.join(dir, entries[0]!.name)))) return path.join(dir, entries[0]!.name);
  return null;
}

/**
 * The requested version from the runtime source, unpacked at `dest`, or null when the source
 * does not have it. A checksum that does not match, or a tree that is not that Python, fails
 * the build.
 */
export async function installRuntime(o: { base: string; requested: RequestedPython; dest: string; cacheDir: string }): Promise<Interpreter | null> {
  const base = o.base.replace(/\/+$/, "");
  let version: string | null = null;
  if (o.requested.patch !== null) version = `${o.requested.major}.${o.requested.minor}.${o.requested.patch}`;
  else {
    const list = await fetchOk(`${base}/versions.txt`, "its list of versions");
    if (!list) return null;
    version = pickVersion(o.requested, (await list.text()).split(/\s+/).filter(Boolean));
  }
  if (!version) return null;
  topic(`Installing python-${version} from this host's runtime source`);
  const file = await tarball(base, version, o.cacheDir);
  if (!file) return null;
  // Unpacked beside its place, on the same file system, then moved there.
  await fs.mkdir(path.dirname(o.dest), { recursive: true });
  const unpack = await fs.mkdtemp(`${o.dest}.unpack-`);
  try {
    await exec("tar", ["-xzf", file, "--no-same-owner", "--no-same-permissions", "-C", unpack]).catch((err: Error & { stderr?: string }) => {
      throw new CompileError(
        `python-${version} from the runtime source could not be unpacked: ${
          String(err.stderr ?? err.message)
            .trim()
            .split("\n")[0]
        }`,
      );
    });
    const root = await treeRoot(unpack);
    if (!root) throw new CompileError(`python-${version} from the runtime source has no bin/python3`);
    await fs.rm(o.dest, { recursive: true, force: true });
    await fs.rename(root, o.dest);
  } finally {
    await fs.rm(unpack, { recursive: true, force: true });
  }
  const python = path.join(o.dest, "bin", "python3");
  const { stdout } = await exec(python, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], {
    env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
  }).catch((err: Error) => {
    throw new CompileError(`python-${version} from the runtime source does not run here: ${err.message.split("\n")[0]}`);
  });
  if (stdout.trim() !== version) throw new CompileError(`the runtime source's python-${version} is python-${stdout.trim()}`);
  return { version, path: python };
}
