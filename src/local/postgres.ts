import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { PostgresServer, postgresBinDir, postgresUser, type RunAs } from "./postgres-server.ts";
import { restartDelayMs } from "./keep-alive.ts";
import { freePort } from "../node/ports.ts";

export interface LocalPostgres {
  /** Superuser URL of the server (scram-sha-256 over 127.0.0.1). */
  adminUrl: string;
  /** URL of the control plane's database. */
  url: string;
  /** The running postmaster (a new one after it was started again). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

const CONTROL_DB = "dynoplane";
const CONTROL_ROLE = "dynoplane";

/** How one embedded cluster is run. */
export interface EmbeddedPostgresOptions {
  port?: number;
  quiet?: boolean;
  ephemeral?: boolean;
  /** The label of its console lines (`postgres`). */
  label?: string;
  /** Make the control plane's role and database in it (default true). */
  controlDatabase?: boolean;
  /** Serve TLS with this certificate and key (clients such as `psql` ask for it). */
  ssl?: { certPath: string; keyPath: string };
  /** listen_addresses (default 127.0.0.1). */
  listen?: string;
  /** pg_hba.conf lines it must have besides initdb's (which admit 127.0.0.1 only). */
  hba?: string[];
  /** pg_hba.conf as a whole, written on every start (instead of initdb's and `hba`). */
  hbaFile?: string[];
  /** The OS user it runs as (default: `postgres` under root, else this process's user). */
  user?: RunAs;
  /** Its Unix socket's directory (made private to its user): the superuser's way in when `hbaFile` admits it there alone. */
  socketDir?: string;
  /** max_connections (default 300). */
  maxConnections?: number;
  /** More `-c name=value` settings. */
  settings?: Record<string, string>;
  /** `cgroup.procs` files its postmaster joins (see PostgresServer). */
  cgroupProcs?: string[];
}

/**
 * Starts (initialising on first use) an embedded PostgreSQL whose data lives in `dir`.
 * The superuser password is generated once and kept in `<dir>.password`.
 */
export async function startEmbeddedPostgres(dir: string, opts: EmbeddedPostgresOptions = {}): Promise<LocalPostgres> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const password = await secretFile(`${dir}.password`);
  const label = opts.label ?? "postgres";
  const port = opts.port ?? (await freePort());
  const user = opts.user ?? postgresUser();
  if (opts.socketDir) {
    await fs.mkdir(opts.socketDir, { recursive: true, mode: 0o700 });
    await fs.chmod(opts.socketDir, 0o700);
    if (user) await fs.chown(opts.socketDir, user.uid, user.gid);
  }
  const settings: Record<string, string> = {
    listen_addresses: opts.listen ?? "127.0.0.1",
    max_connections: String(opts.maxConnections ?? 300),
    ...(opts.socketDir ? { unix_socket_directories: opts.socketDir } : {}),
    ...(opts.ssl ? { ssl: "on", ssl_cert_file: opts.ssl.certPath, ssl_key_file: opts.ssl.keyPath } : {}),
    ...(opts.ephemeral ? { fsync: "off" } : {}),
    ...opts.settings,
  };
  const server = new PostgresServer({
    binDir: await postgresBinDir(user),
    dataDir: dir,
    port,
    password,
    user,
    // Byte-order collation: app names sort and page the same way everywhere.
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    serverFlags: Object.entries(settings).flatMap(([name, value]) => ["-c", `${name}=${value}`]),
    cgroupProcs: opts.cgroupProcs,
    onLog: opts.quiet ? () => {} : (m) => process.stderr.write(`[${label}] ${m}`),
  });
  if (!server.initialised()) await server.initialise();
  if (user) await chownTree(dir, user);
  if (opts.hbaFile) {
    const file = path.join(dir, "pg_hba.conf");
    await fs.writeFile(file, `# Written by dynoplane on every start.\n${opts.hbaFile.join("\n")}\n`, { mode: 0o600 });
    if (user) await fs.chown(file, user.uid, user.gid);
  } else if (opts.hba?.length) {
    const file = path.join(dir, "pg_hba.conf");
    const current = await fs.readFile(file, "utf8");
    const missing = opts.hba.filter((line) => !current.split("\n").includes(line));
    if (missing.length) await fs.appendFile(file, `${missing.join("\n")}\n`);
  }
  await server.start();
  const watch = keepPostgresAlive(server, label);
  const adminHost = opts.socketDir ? encodeURIComponent(opts.socketDir) : "127.0.0.1";
  const adminUrl = `postgres://postgres:${password}@${adminHost}:${port}/postgres`;
  if (opts.controlDatabase === false) {
    return {
      adminUrl,
      url: adminUrl,
      pid: () => server.process?.pid,
      stop: async () => {
        watch.stopping = true;
        await server.stop();
      },
    };
  }
  const controlPassword = await secretFile(path.join(path.dirname(dir), "control.password"));
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // The control plane connects as its own unprivileged role, once per request. Its
    // password is 128 random bits, which key stretching cannot strengthen, so its SCRAM
    // verifier uses few iterations and connecting stays cheap.
    await admin.query("set scram_iterations = 16");
    const { rowCount: hasRole } = await admin.query("select 1 from pg_roles where rolname = $1", [CONTROL_ROLE]);
    await admin.query(`${hasRole ? "alter" : "create"} role ${CONTROL_ROLE} login password '${controlPassword}'`);
    const { rowCount: hasDb } = await admin.query("select 1 from pg_database where datname = $1", [CONTROL_DB]);
    if (!hasDb) await admin.query(`create database ${CONTROL_DB} owner ${CONTROL_ROLE}`);
  } finally {
    await admin.end();
  }
  return {
    adminUrl,
    url: `postgres://${CONTROL_ROLE}:${controlPassword}@127.0.0.1:${port}/${CONTROL_DB}`,
    pid: () => server.process?.pid,
    stop: async () => {
      watch.stopping = true;
      await server.stop();
    },
  };
}

/**
 * Starts Postgres again when its postmaster dies, trying each second (the old backends must
 * notice their postmaster's death and let go of shared memory first); says so on the console.
 */
function keepPostgresAlive(server: PostgresServer, label: string): { stopping: boolean } {
  const state = { stopping: false };
  const name = label === "postgres" ? "Postgres" : `Postgres (${label})`;
  const watch = () =>
    server.process?.once("exit", (code, signal) => {
      if (state.stopping) return;
      console.error(`dynoplane: ${name} died (${signal ?? `exit code ${code}`}); starting it again`);
      void (async () => {
        for (let attempt = 1; !state.stopping; attempt++) {
          await new Promise((r) => setTimeout(r, attempt < 30 ? 1_000 : restartDelayMs(attempt - 28)));
          if (state.stopping) return;
          try {
            await server.start();
            console.error(`dynoplane: ${name} started again (pid ${server.process?.pid})`);
            return watch();
          } catch {
            if (attempt % 10 === 1) console.error(`dynoplane: ${name} did not start yet (its old processes are still letting go); trying again`);
          }
        }
      })();
    });
  watch();
  return state;
}

/**
 * Gives a data directory to `user` when another user owns it (a cluster that moved to a user
 * of its own keeps its data). Only the top is looked at: initdb makes everything below it.
 */
async function chownTree(dir: string, user: RunAs): Promise<void> {
  const stat = await fs.stat(dir);
  if (stat.uid === user.uid && stat.gid === user.gid) return;
  const walk = async (p: string): Promise<void> => {
    await fs.lchown(p, user.uid, user.gid);
    const entry = await fs.lstat(p);
    if (!entry.isDirectory()) return;
    for (const name of await fs.readdir(p)) await walk(path.join(p, name));
  };
  await walk(dir);
}

/** A random secret kept in `file` (created on first use, readable by its owner only). */
export async function secretFile(file: string): Promise<string> {
  if (existsSync(file)) return (await fs.readFile(file, "utf8")).trim();
  const secret = crypto.randomUUID().replace(/-/g, "");
  await fs.writeFile(file, secret + "\n", { mode: 0o600 });
  return secret;
}
