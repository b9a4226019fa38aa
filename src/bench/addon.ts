import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { fetch } from "undici";
import { median, printTimings } from "./timings.ts";
import { startPlatform } from "../local/platform.ts";
import { benchToken } from "./account.ts";
import { localDispatcher } from "./sample-app.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface AddonBenchOptions {
  rounds: number;
}

/**
 * Heroku Postgres on the local platform, through the Platform API: seconds from
 * `POST /apps/{app}/addons` to the add-on reading `provisioned` (its database made,
 * attached, DATABASE_URL set, a release cut), and from the data API's rotation call to its
 * answer (new password, sessions ended, config updated, a release). Beside each, the same
 * SQL run directly on the same server in the same round (`CREATE ROLE`, `CREATE DATABASE`;
 * `ALTER ROLE … PASSWORD`): the floor.
 */
export async function run(options: AddonBenchOptions): Promise<number> {
  const { rounds } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({
    home,
    quiet: !process.env.DYNOPLANE_BENCH_VERBOSE,
    ephemeral: true,
    noHost: true,
    workerVars: { RATE_LIMIT_PER_HOUR: "100000000" },
  });
  const dispatcher = localDispatcher(platform.tls.caPath);
  try {
    const token = await benchToken(platform.databaseUrl);
    const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    // biome-ignore lint/suspicious/noExplicitAny: the Platform API's JSON, read field by field
    const call = async (method: string, p: string, body?: unknown): Promise<any> => {
      const res = await fetch(`${platform.apiUrl}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher });
      const json = await res.json();
      if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const provision: number[] = [];
    const rotate: number[] = [];
    const sqlCreate: number[] = [];
    const sqlRotate: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      const app = (await call("POST", "/apps", {})).name as string;
      const started = performance.now();
      const addon = await call("POST", `/apps/${app}/addons`, { plan: { name: "heroku-postgresql:essential-0" } });
      for (;;) {
        const info = await call("GET", `/apps/${app}/addons/${addon.name}`);
        if (info.state === "provisioned") break;
        if (info.state !== "provisioning") throw new Error(`${addon.name}: ${info.provision_message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      provision.push(performance.now() - started);

      const rotating = performance.now();
      await call("POST", `/postgres/v0/databases/${addon.name}/credentials/default/credentials_rotation`, {});
      rotate.push(performance.now() - rotating);

      const direct = await directSql(platform.addonDatabaseUrl, i);
      sqlCreate.push(direct.create);
      sqlRotate.push(direct.rotate);
      await call("DELETE", `/apps/${app}`);
      console.log(
        `round ${i}: provision ${provision.at(-1)!.toFixed(0)} ms (SQL ${direct.create.toFixed(0)} ms), rotate ${rotate.at(-1)!.toFixed(0)} ms (SQL ${direct.rotate.toFixed(1)} ms)`,
      );
    }
    console.log(`\nHeroku Postgres through the Platform API on the local platform (${rounds} rounds, ${os.cpus().length} CPUs)\n`);
    const rows: Array<[string, number[]]> = [
      ["provision (POST /apps/{app}/addons -> provisioned)", provision],
      ["  the same SQL directly (CREATE ROLE, CREATE DATABASE, REVOKE)", sqlCreate],
      ["rotate (POST .../credentials_rotation -> answer)", rotate],
      ["  the same SQL directly (ALTER ROLE ... PASSWORD, end sessions)", sqlRotate],
    ];
    printTimings(rows);
    console.log(
      `\nprovision median ${median(provision).toFixed(0)} ms = ${(median(provision) / median(sqlCreate)).toFixed(1)}x its SQL; rotate median ${median(rotate).toFixed(0)} ms = ${(median(rotate) / median(sqlRotate)).toFixed(1)}x its SQL`,
    );
    return 0;
  } finally {
    await dispatcher.close();
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** What the provider does, as bare SQL on one connection of the server's administration role each, timed the same way. */
async function directSql(adminUrl: string, round: number): Promise<{ create: number; rotate: number }> {
  const name = `bench_direct_${process.pid}_${round}`;
  const admin = async <T>(fn: (c: pg.Client) => Promise<T>) => {
    // Roles the administration role makes are its own to use (as the provider's sessions set it).
    const c = new pg.Client({ connectionString: adminUrl, options: "-c createrole_self_grant=set,inherit" });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  const started = performance.now();
  await admin(async (c) => {
    await c.query(`create role ${name} login password 'x${crypto.randomUUID()}' connection limit 20 nocreatedb nocreaterole`);
    await c.query(`create database ${name} owner ${name}`);
    await c.query(`revoke all on database ${name} from public`);
  });
  const create = performance.now() - started;
  const rotating = performance.now();
  await admin(async (c) => {
    await c.query(`alter role ${name} password 'y${crypto.randomUUID()}'`);
    await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", [name]);
  });
  const rotate = performance.now() - rotating;
  await admin(async (c) => {
    await c.query(`drop database ${name}`);
    await c.query(`drop role ${name}`);
  });
  return { create, rotate };
}
