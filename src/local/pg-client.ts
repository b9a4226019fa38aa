import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { withInstallLock } from "./install-lock.ts";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { ROOT } from "./worker.ts";

/**
 * PostgreSQL client tools (pg_dump, pg_restore) of at least a given major version, for backups
 * of the add-on server: pg_dump refuses a server newer than itself. The machine's own are used
 * when new enough; otherwise they are built once from PostgreSQL's released source.
 */

/** The release built when the machine has nothing new enough: Debian's copy of the upstream tarball. */
const SOURCE = {
  version: "18.6",
  major: 18,
  // Plain HTTP, as Debian's mirrors serve it: the pinned size and hash are what make it trusted.
  url: "http://deb.debian.org/debian/pool/main/p/postgresql-18/postgresql-18_18.6.orig.tar.bz2",
  sha256: "555610c24d53e4316da5b7d3fc25c279d96856d5e0e23ee308c328c5fa881d9f",
  bytes: 22_632_314,
};

/** Where the built tools are installed (the configure prefix); DYNOPLANE_PG_CLIENT_DIR overrides the default. */
const installDir = path.resolve(process.env.DYNOPLANE_PG_CLIENT_DIR ?? path.join(ROOT, ".dynoplane", "pg-client"));
const lockPath = `${installDir}.lock`;
// Written last: an install dir without it is a build that did not finish.
const markerPath = path.join(installDir, ".complete");
// A build takes about two minutes here; a slow machine gets room before its lock counts as stale.
const LOCK_STALE_MS = 30 * 60_000;

const execFileAsync = promisify(execFile);

/** The major version in `pg_dump --version` output ("pg_dump (PostgreSQL) 18.6" → 18); null when there is none. Pure. */
export function pgMajor(versionOutput: string): number | null {
  const match = /\(PostgreSQL\) (\d+)/.exec(versionOutput);
  const major = match ? Number(match[1]) : 0;
  return major > 0 ? major : null;
}

/** The major version of the local add-on server (the embedded PostgreSQL in package.json). */
export const LOCAL_ADDON_PG_MAJOR = 18;

const ready = new Map<number, Promise<string>>();

/**
 * A directory holding executable pg_dump and pg_restore of major version `major` or newer: the
 * machine's own when new enough, else (major 18 only) a build from source, made once per checkout.
 */
export function pgClientTools(major: number): Promise<string> {
  let tools = ready.get(major);
  if (!tools) {
    tools = findOrBuild(major);
    ready.set(major, tools);
    tools.catch(() => ready.delete(major));
  }
  return tools;
}

async function findOrBuild(major: number): Promise<string> {
  for (const dir of candidates(major)) if (await suitable(dir, major)) return dir;
  const bin = path.join(installDir, "bin");
  if (major <= SOURCE.major && built()) return bin;
  if (major !== SOURCE.major) throw notFound(major);
  return withInstallLock(lockPath, LOCK_STALE_MS, async () => {
    if (!built()) await build();
    return bin;
  });
}

function notFound(major: number): Error {
  return new Error(
    `PostgreSQL ${major} client tools (pg_dump, pg_restore) not found: install postgresql-client-${major} ` +
      `(apt.postgresql.org has it), or set DYNOPLANE_PG_BIN to a directory holding them`,
  );
}

/** DYNOPLANE_PG_BIN, then Debian's per-version directories (newest first), then PATH's pg_dump. */
function candidates(major: number): string[] {
  const dirs: string[] = [];
  if (process.env.DYNOPLANE_PG_BIN) dirs.push(process.env.DYNOPLANE_PG_BIN);
  for (let n = 30; n >= major; n--) dirs.push(`/usr/lib/postgresql/${n}/bin`);
  const onPath = whichDir("pg_dump");
  if (onPath) dirs.push(onPath);
  return dirs;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The PATH directory holding an executable `name`, if any. */
function whichDir(name: string): string | undefined {
  return (process.env.PATH ?? "").split(path.delimiter).find((dir) => dir && isExecutable(path.join(dir, name)));
}

async function suitable(dir: string, major: number): Promise<boolean> {
  if (!isExecutable(path.join(dir, "pg_dump")) || !isExecutable(path.join(dir, "pg_restore"))) return false;
  try {
    const { stdout } = await execFileAsync(path.join(dir, "pg_dump"), ["--version"], { timeout: 30_000 });
    return (pgMajor(stdout) ?? 0) >= major;
  } catch {
    return false;
  }
}

function built(): boolean {
  try {
    return readFileSync(markerPath, "utf8").trim() === SOURCE.version;
  } catch {
    return false;
  }
}

/**
 * Builds pg_dump and pg_restore (and the libpq they link) into installDir. The prefix is the
 * final directory because the binaries find libpq through an rpath naming it; the lock keeps
 * a second builder out, and the marker makes the install count only once it is whole.
 */
async function build(): Promise<void> {
  for (const tool of ["bison", "flex"]) {
    if (!whichDir(tool)) throw new Error(`building PostgreSQL ${SOURCE.version}'s client tools needs ${tool}: apt-get install bison flex`);
  }
  process.stderr.write(`dynoplane: building PostgreSQL ${SOURCE.major} client tools (pg_dump, pg_restore) from source, once; about two minutes\n`);
  const work = `${installDir}.build`;
  rmSync(installDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  const src = path.join(work, "src");
  mkdirSync(src, { recursive: true });
  try {
    const tarball = path.join(work, "postgresql.tar.bz2");
    await download(tarball);
    await run("tar", ["xjf", tarball, "-C", src, "--strip-components=1"], work);
    await run("./configure", [`--prefix=${installDir}`, "--without-icu", "--without-readline", "--with-openssl", "-q"], src);
    const jobs = `-j${os.availableParallelism() + 1}`;
    await run("make", ["-s", jobs, "-C", "src/backend", "generated-headers"], src);
    // The libraries one directory at a time, before pg_dump: its makefile builds libpq and
    // fe_utils from two submakes at once, and both would write src/port's archive together.
    for (const dir of ["src/port", "src/common", "src/interfaces/libpq", "src/fe_utils", "src/bin/pg_dump"]) await run("make", ["-s", jobs, "-C", dir], src);
    await run("make", ["-s", "-C", "src/interfaces/libpq", "install"], src);
    await run("make", ["-s", "-C", "src/bin/pg_dump", "install"], src);
    if (!(await suitable(path.join(installDir, "bin"), SOURCE.major))) throw new Error(`the pg_dump built in ${installDir} does not run`);
    writeFileSync(markerPath, `${SOURCE.version}\n`);
  } catch (err) {
    rmSync(installDir, { recursive: true, force: true });
    throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Streams the source tarball to `file`, refusing it unless its size and SHA-256 are the pinned ones. */
async function download(file: string): Promise<void> {
  const res = await fetch(SOURCE.url, { signal: AbortSignal.timeout(10 * 60_000) });
  if (!res.ok || !res.body) throw new Error(`GET ${SOURCE.url}: HTTP ${res.status}`);
  const hash = createHash("sha256");
  let bytes = 0;
  await pipeline(
    res.body,
    async function* (chunks: AsyncIterable<Uint8Array>) {
      for await (const chunk of chunks) {
        hash.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(file),
  );
  const sha256 = hash.digest("hex");
  if (bytes !== SOURCE.bytes || sha256 !== SOURCE.sha256) {
    throw new Error(`${SOURCE.url} is not the pinned release: got ${bytes} bytes, sha256 ${sha256}; expected ${SOURCE.bytes} bytes, sha256 ${SOURCE.sha256}`);
  }
}

/** Runs a build step; a failure carries the last lines of its output. */
function run(command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-32_768);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) return resolve();
      const tail = output.trimEnd().split("\n").slice(-30).join("\n");
      reject(new Error(`${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`}) in ${cwd}:\n${tail}`));
    });
  });
}
