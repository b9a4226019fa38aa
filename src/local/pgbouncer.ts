import { chownSync, existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { spawnService } from "./child.ts";
import { keepAlive } from "./keep-alive.ts";
import { freePort, waitForPort } from "../node/ports.ts";

export interface LocalPooler {
  /** The pooled URL: same role and database, PgBouncer's port. */
  url: string;
  /** The running PgBouncer (a new one after it was started again). */
  pid(): number | undefined;
  stop(): Promise<void>;
}

const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];

/** The PgBouncer binary, if this machine has one. */
export function findPgBouncer(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/**
 * Puts PgBouncer in transaction mode in front of the control plane's database, as Neon's
 * pooled endpoints (and Hyperdrive) do in production: the Worker opens a connection per
 * request, and a pooler turns that into a cheap hand-off instead of a new backend.
 * PgBouncer refuses to run as root, so it runs as the database's unprivileged user.
 */
export async function startPgBouncer(opts: {
  binary: string;
  dir: string;
  adminUrl: string;
  url: string;
  runAs?: { uid: number; gid: number };
}): Promise<LocalPooler> {
  const direct = new URL(opts.url);
  const role = decodeURIComponent(direct.username);
  const database = direct.pathname.slice(1);
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  await admin.connect();
  let secret: string;
  try {
    // The SCRAM verifier (not the password) lets PgBouncer check clients and log in to the server.
    const { rows } = await admin.query<{ rolpassword: string }>("select rolpassword from pg_authid where rolname = $1", [role]);
    secret = rows[0]!.rolpassword;
  } finally {
    await admin.end();
  }
  await fs.mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const port = await freePort();
  const ini = path.join(opts.dir, "pgbouncer.ini");
  const userlist = path.join(opts.dir, "userlist.txt");
  await fs.writeFile(userlist, `"${role}" "${secret}"\n`, { mode: 0o600 });
  await fs.writeFile(
    ini,
    [
      "[databases]",
      `${database} = host=${direct.hostname} port=${direct.port} dbname=${database}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${userlist}`,
      "pool_mode = transaction",
      "max_client_conn = 2000",
      "default_pool_size = 20",
      "ignore_startup_parameters = extra_float_digits,options",
      // After a failed connect to Postgres (it is restarting), try again within a second,
      // not the default 15 s: clients wait in the pool meanwhile.
      "server_login_retry = 1",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  if (opts.runAs) for (const f of [opts.dir, ini, userlist]) chownSync(f, opts.runAs.uid, opts.runAs.gid);
  // Kept alive on the same port: the Worker's DATABASE_URL names it.
  const kept = keepAlive("PgBouncer", () => spawnService(opts.binary, [ini], { quiet: true, ...opts.runAs }));
  try {
    await waitForPort(port, "127.0.0.1", 10_000);
  } catch (err) {
    await kept.stop(0);
    throw new Error(`pgbouncer did not start: ${String(err)}\n${kept.current().output()}`);
  }
  const url = new URL(opts.url);
  url.port = String(port);
  return { url: url.toString(), pid: () => kept.current().child.pid, stop: () => kept.stop(5_000) };
}
