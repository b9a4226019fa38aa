import { spawn } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { request } from "undici";
import type { HostRequest } from "./control-plane.ts";
import type { DynoUser } from "./dyno-user.ts";

/** Where the agent keeps a downloaded slug; dynos never read this directory. */
export function slugCachePath(workDir: string, slugId: string): string {
  return path.join(workDir, "slugs", `${slugId}.tgz`);
}

/**
 * Streams the body of a GET to `dest`. It lands under a temporary name and is renamed
 * when complete, so a crash mid-download never leaves a truncated slug under the real name.
 */
export async function downloadSlug(from: HostRequest, dest: string): Promise<void> {
  await fs.mkdir(path.dirname(dest), { recursive: true, mode: 0o700 });
  const url = new URL(from.url);
  const res = await request(url, { headers: from.headers, dispatcher: from.dispatcher, headersTimeout: 60_000 });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`GET ${url.pathname} answered ${res.statusCode}`);
  }
  const partial = `${dest}.${process.pid}.${Date.now()}.partial`;
  try {
    await pipeline(res.body, createWriteStream(partial, { mode: 0o600 }));
    await fs.rename(partial, dest);
  } catch (err) {
    await fs.rm(partial, { force: true });
    throw err;
  }
}

/** Runs a command and returns its stdout; rejects with its stderr on failure. */
function run(cmd: string, args: string[], opts: { stdin?: string; user?: DynoUser | null; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      ...(opts.user ? { uid: opts.user.uid, gid: opts.user.gid } : {}),
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    if (opts.stdin) {
      // The archive is opened by the agent and fed through a pipe, so the extracting user
      // never needs read access to the slug cache.
      // A read error ends tar's input early; tar then fails and its message is the one reported.
      pipeline(createReadStream(opts.stdin), child.stdin!).catch(() => child.stdin!.destroy());
    }
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`${cmd} ${args[0]} failed (${code}): ${err.trim()}`)),
    );
  });
}

/** Why a tar member name is unsafe to extract, or null when it is fine. */
export function unsafeEntry(name: string): string | null {
  if (name.startsWith("/")) return "absolute path";
  if (name.split("/").includes("..")) return "'..' in path";
  return null;
}

/**
 * Unpacks a slug (Heroku layout: everything under `./app`) into a new directory below
 * `parent` and returns it with its app directory. Member names are checked first; then
 * the system tar extracts as the dyno user, so the tree belongs to that user and even a
 * crafted link inside the archive cannot write anywhere that user could not.
 */
export async function unpackSlug(archive: string, parent: string, prefix: string, user: DynoUser | null): Promise<{ dir: string; appDir: string }> {
  await fs.access(archive);
  const listing = await run("tar", ["-tzf", "-"], { stdin: archive });
  for (const name of listing.split("\n")) {
    if (!name) continue;
    const why = unsafeEntry(name);
    if (why) throw new Error(`slug refused: ${why}: ${name}`);
  }
  await fs.mkdir(parent, { recursive: true, mode: 0o711 });
  const dir = await fs.mkdtemp(path.join(parent, `${prefix}-`));
  try {
    await fs.chmod(dir, 0o700);
    if (user) await fs.chown(dir, user.uid, user.gid);
    // The working directory is entered before the uid changes, so the parent may be closed to the user.
    await run("tar", ["-xzf", "-", "--no-same-owner", "--no-same-permissions"], { stdin: archive, user, cwd: dir });
    const appDir = path.join(dir, "app");
    const stat = await fs.stat(appDir).catch(() => null);
    if (!stat?.isDirectory()) throw new Error("slug refused: it has no ./app directory");
    return { dir, appDir };
  } catch (err) {
    await removeInstanceDir(dir);
    throw err;
  }
}

/** Deletes an instance's directory: the dyno's ephemeral filesystem ends with the instance. */
export async function removeInstanceDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Each slug unpacked once per host, as the app's uid, into a directory only the agent can
 * reach: the read-only lower layer of every sandbox that runs it. A sandbox writes into a
 * fresh layer above it, so a dyno's filesystem is still new at every start.
 */
export class SlugUnpacker {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly dir: string) {}

  /** The unpacked `app` directory of a slug, unpacking it first when needed. */
  unpack(slugId: string, archive: string, user: DynoUser): Promise<string> {
    const done = path.join(this.dir, slugId, "app");
    let p = this.pending.get(slugId);
    if (!p) {
      p = (async () => {
        if (
          await fs.stat(done).then(
            (s) => s.isDirectory(),
            () => false,
          )
        )
          return done;
        await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
        await fs.chmod(this.dir, 0o700);
        const { dir } = await unpackSlug(archive, this.dir, `${slugId}.partial`, user);
        await fs.rm(path.join(this.dir, slugId), { recursive: true, force: true });
        await fs.rename(dir, path.join(this.dir, slugId));
        return done;
      })();
      this.pending.set(slugId, p);
      void p.finally(() => this.pending.delete(slugId)).catch(() => {});
    }
    return p;
  }

  /** Removes unpacked slugs not in `keep` (and half-done ones no unpack is working on). */
  async prune(keep: Set<string>): Promise<void> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const busy = [...this.pending.keys()];
    const stale = names.filter((n) => !keep.has(n) && !busy.some((id) => n.startsWith(id)));
    await Promise.all(stale.map((n) => fs.rm(path.join(this.dir, n), { recursive: true, force: true })));
  }
}
