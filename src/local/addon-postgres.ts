import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { createCgroup, detectCgroups, HARD_LIMIT_FACTOR, type SandboxCgroup } from "../agent/sandbox/cgroups.ts";
import { DEFAULT_DYNO_SUPERNET, servicesAddress } from "../agent/sandbox/network.ts";
import { freePort } from "../node/ports.ts";
import { ADMIN_ROLE, serverSetupStatements, templateSetupStatements } from "../services/addons/providers/postgres.ts";
import { type LocalPostgres, secretFile, startEmbeddedPostgres } from "./postgres.ts";
import { addonPostgresUser } from "./postgres-server.ts";
import type { LocalTls } from "./tls.ts";

const execFileAsync = promisify(execFile);

/** Connections the add-on server has; add-ons are promised at most what it has (see the provider). */
const MAX_CONNECTIONS = 1000;
/** Of those, kept for the platform's administration role alone (pg_use_reserved_connections). */
const RESERVED_CONNECTIONS = 10;

export interface AddonPostgres extends LocalPostgres {
  /** The URL the control plane administers the server with: its own role, no superuser, over 127.0.0.1. */
  adminUrl: string;
  /** The superuser's URL: over the server's private Unix socket only (pg_hba admits it nowhere else). */
  superuserUrl: string;
  /** `host:port` apps reach the server at (their DATABASE_URL). */
  publicAddress: string;
  /** Whether dynos reach it (from their sandboxes' network). */
  dynoReachable: boolean;
  /** The cgroup its processes run in, when the host has one for it. */
  cgroup?: SandboxCgroup;
  /** Gives back the services address when nothing else on this machine listens on it. */
  release(): Promise<void>;
}

/** What the add-on server's cgroup allows it: from the environment, else half the machine's CPUs and 4 GiB. */
export function addonServerLimits(env: NodeJS.ProcessEnv = process.env): { memoryMb: number; cpus: number } {
  const memoryMb = Number(env.DYNOPLANE_ADDON_POSTGRES_MEMORY_MB) || 4096;
  const cpus = Number(env.DYNOPLANE_ADDON_POSTGRES_CPUS) || Math.max(1, Math.floor(os.availableParallelism() / 2));
  return { memoryMb, cpus };
}

/**
 * The PostgreSQL cluster `heroku addons:create heroku-postgresql` makes databases on, in
 * `addon-postgres` of the services directory (the home, see serviceDir). It is contained as
 * tenant code is:
 *
 * - it runs as an OS user of its own (`dynoplane-pgaddons`, not the control plane's
 *   `postgres`), so a superuser of it, had one ever appeared, could not read the control
 *   plane's data directory (0700, `postgres`'s), nor the other way round;
 * - in a cgroup with a memory and CPU cap (`addonServerLimits`);
 * - its pg_hba admits the superuser over its private Unix socket alone, the platform's
 *   administration role over 127.0.0.1 alone, and every other role only to the database
 *   of its own name (`sameuser`), from 127.0.0.1, the dyno network or the services address;
 * - the control plane administers it as `dynoplane_admin`, a role with CREATEROLE and
 *   CREATEDB but no superuser (the provider's `serverSetupStatements` make it, run here
 *   by the superuser on every start).
 *
 * It serves TLS with the local CA's certificate (clients such as `psql` ask for it); its
 * copy of the key belongs to the server's user, as Postgres insists. Dynos reach it at the
 * platform's services address (on the host's loopback interface, see servicesAddress),
 * where the agent lets them in on its port alone; without root (no sandboxes) dynos are host
 * processes and use 127.0.0.1.
 */
export async function startAddonPostgres(home: string, tls: LocalTls, opts: { quiet?: boolean; ephemeral?: boolean }): Promise<AddonPostgres> {
  const root = process.getuid?.() === 0;
  const address = servicesAddress();
  if (root) await execFileAsync("ip", ["addr", "replace", `${address}/32`, "dev", "lo"]);
  const dir = path.join(home, "addon-postgres");
  const owner = addonPostgresUser();
  const tlsDir = `${dir}.tls`;
  await fs.mkdir(tlsDir, { recursive: true, mode: 0o700 });
  const certPath = path.join(tlsDir, "server.pem");
  const keyPath = path.join(tlsDir, "server.key");
  await fs.copyFile(tls.certPath, certPath);
  await fs.copyFile(tls.keyPath, keyPath);
  await fs.chmod(keyPath, 0o600);
  if (owner) for (const p of [tlsDir, certPath, keyPath]) await fs.chown(p, owner.uid, owner.gid);
  // The same port on every start: apps' DATABASE_URLs name it.
  const portFile = `${dir}.port`;
  const kept = existsSync(portFile) ? Number(readFileSync(portFile, "utf8").trim()) : Number.NaN;
  const port = Number.isInteger(kept) && kept > 0 ? kept : await freePort();
  await fs.writeFile(portFile, `${port}\n`);

  const layout = root ? detectCgroups() : null;
  const limits = addonServerLimits();
  const cgroup = layout
    ? createCgroup(layout, "dynoplane-services", `addon-postgres-${path.basename(home).replace(/[^A-Za-z0-9_.-]/g, "_")}-${port}`, {
        // The kernel's hard limit is HARD_LIMIT_FACTOR times a sandbox's quota.
        memoryMb: Math.ceil(limits.memoryMb / HARD_LIMIT_FACTOR),
        pids: MAX_CONNECTIONS + 200,
        cpuWeight: 100,
        cpus: limits.cpus,
      })
    : undefined;

  const tenantNets = root ? ["127.0.0.1/32", DEFAULT_DYNO_SUPERNET, `${address}/32`] : ["127.0.0.1/32"];
  const server = await startEmbeddedPostgres(dir, {
    port,
    quiet: opts.quiet,
    ephemeral: opts.ephemeral,
    label: "addon-postgres",
    controlDatabase: false,
    user: owner,
    socketDir: `${dir}.socket`,
    maxConnections: MAX_CONNECTIONS,
    // pg_stat_statements for `pg:outliers` and `pg:calls` (each tenant sees its own statements, see templateSetupStatements).
    settings: { reserved_connections: String(RESERVED_CONNECTIONS), shared_preload_libraries: "pg_stat_statements" },
    cgroupProcs: cgroup?.procsFiles,
    ssl: { certPath, keyPath },
    listen: root ? `127.0.0.1,${address}` : "127.0.0.1",
    hbaFile: [
      "local all postgres scram-sha-256",
      "host all postgres 0.0.0.0/0 reject",
      "host all postgres ::/0 reject",
      `host all ${ADMIN_ROLE} 127.0.0.1/32 scram-sha-256`,
      `host all ${ADMIN_ROLE} 0.0.0.0/0 reject`,
      ...tenantNets.map((net) => `host sameuser all ${net} scram-sha-256`),
    ],
  });
  const adminPassword = await secretFile(`${dir}.admin-password`);
  try {
    await runAsSuperuser(server.adminUrl, "postgres", serverSetupStatements(adminPassword));
    await runAsSuperuser(server.adminUrl, "template1", templateSetupStatements());
  } catch (err) {
    await server.stop();
    throw err;
  }
  return {
    ...server,
    superuserUrl: server.adminUrl,
    adminUrl: `postgres://${ADMIN_ROLE}:${adminPassword}@127.0.0.1:${port}/postgres`,
    url: `postgres://${ADMIN_ROLE}:${adminPassword}@127.0.0.1:${port}/postgres`,
    publicAddress: `${root ? address : "127.0.0.1"}:${port}`,
    dynoReachable: root,
    cgroup,
    stop: async () => {
      await server.stop();
      // Its last backends may still be leaving the group for a moment after the postmaster.
      for (let i = 0; cgroup && !cgroup.remove() && i < 20; i++) await new Promise((r) => setTimeout(r, 100));
    },
    // The services address goes with the last server on it (another platform on this machine may still use it).
    release: async () => {
      if (root && !(await listenedOn(address))) await execFileAsync("ip", ["addr", "del", `${address}/32`, "dev", "lo"]).catch(() => {});
    },
  };
}

/**
 * The superuser's statements, in the server's own databases (`postgres`, `template1`), never in
 * a tenant's: its session there could run a tenant's code as a superuser.
 */
async function runAsSuperuser(url: string, database: "postgres" | "template1", statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url.replace(/\/postgres$/, `/${database}`), options: "-c search_path=pg_catalog,pg_temp" });
  client.on("error", () => {});
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Whether anything on this machine listens on TCP at an IPv4 address (from /proc/net/tcp). */
async function listenedOn(address: string): Promise<boolean> {
  const hex = address
    .split(".")
    .reverse()
    .map((n) => Number(n).toString(16).padStart(2, "0"))
    .join("")
    .toUpperCase();
  const table = await fs.readFile("/proc/net/tcp", "utf8").catch(() => "");
  return table.split("\n").some((line) => {
    const [, local, , state] = line.trim().split(/\s+/);
    return state === "0A" && local?.startsWith(`${hex}:`);
  });
}
