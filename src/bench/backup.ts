import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { fetch } from "undici";
import { PLATFORM_SCHEMAS } from "../agent/transfers.ts";
import { pgClientTools } from "../local/pg-client.ts";
import { startPlatform } from "../local/platform.ts";
import { benchToken } from "./account.ts";
import { localDispatcher } from "./sample-app.ts";
import { median, printTimings } from "./timings.ts";

const execFileAsync = promisify(execFile);

/** The local add-on server's major version: its pg_dump and pg_restore are the floor's tools too. */
const PG_MAJOR = 18;
/** How often a transfer is asked whether it has finished. */
const POLL_MS = 100;
/** A transfer that has not finished after this long counts as failed. */
const TRANSFER_DEADLINE_MS = 30 * 60_000;
/** Platform time over the bare tool's, for capture and restore alike. */
const GOAL_RATIO = 1.3;
/** What one row of the filler table takes on disk, about (tuple header, int, 128-character text, line pointer). */
const ROW_BYTES = 170;

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface BackupBenchOptions {
  rounds: number;
  /** About how many MB of table data the database holds. */
  mb: number;
}

/**
 * Heroku PGBackups on the local platform, through the data API: seconds from the capture
 * POST to the backup transfer reading `finished_at` with `succeeded` (a host runs pg_dump in
 * a sandbox and uploads the dump to the blob store), and the same for a restore of that
 * backup (the host fetches the dump and runs pg_restore into a fresh database, which then
 * takes the add-on's place); both polled every 100 ms. Beside each, in the same round on the
 * same server with the same tools run as plain processes: `pg_dump --format=custom` with the
 * database's own credentials to a file, and `pg_restore --no-owner --no-acl` of that file
 * into a fresh database. Goal: each at most 1.3x its bare tool.
 */
export async function run(options: BackupBenchOptions): Promise<number> {
  const { rounds, mb } = options;
  const bin = await pgClientTools(PG_MAJOR);
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({
    home,
    quiet: !process.env.DYNOPLANE_BENCH_VERBOSE,
    ephemeral: true,
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
    /** Polls a transfer until it has finished; one that failed throws with its log. */
    // biome-ignore lint/suspicious/noExplicitAny: the data API's transfer JSON
    const finished = async (app: string, uuid: string): Promise<any> => {
      const deadline = Date.now() + TRANSFER_DEADLINE_MS;
      for (;;) {
        const t = await call("GET", `/client/v11/apps/${app}/transfers/${uuid}`);
        if (t.finished_at && t.succeeded) return t;
        if (t.finished_at || Date.now() > deadline) {
          const logs = (await call("GET", `/client/v11/apps/${app}/transfers/${uuid}?verbose=true`)).logs as { message: string }[];
          throw new Error(`transfer ${t.num} ${t.finished_at ? "failed" : "did not finish"}:\n${logs.map((l) => l.message).join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };

    const app = (await call("POST", "/apps", {})).name as string;
    const addon = await call("POST", `/apps/${app}/addons`, { plan: { name: "heroku-postgresql:essential-1" } });
    for (;;) {
      const info = await call("GET", `/apps/${app}/addons/${addon.name}`);
      if (info.state === "provisioned") break;
      if (info.state !== "provisioning") throw new Error(`${addon.name}: ${info.provision_message}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const databaseUrl = (await call("GET", `/apps/${app}/config-vars`)).DATABASE_URL as string;
    const filled = await fill(databaseUrl, mb);
    console.log(`${addon.name}: ${filled.rows} rows, table and index ${mib(filled.tableBytes)}, pg_database_size ${mib(filled.databaseBytes)}`);

    const capture: number[] = [];
    const restore: number[] = [];
    const dump: number[] = [];
    const pgRestore: number[] = [];
    const createDb: number[] = [];
    let platformBytes = 0;
    let directBytes = 0;
    for (let i = 1; i <= rounds; i++) {
      const capturing = performance.now();
      const started = await call("POST", `/client/v11/databases/${addon.id}/backups`);
      const backup = await finished(app, started.uuid);
      capture.push(performance.now() - capturing);
      platformBytes = backup.processed_bytes;

      const restoring = performance.now();
      const restored = await call("POST", `/client/v11/databases/${addon.id}/restores`, { backup_url: backup.to_url });
      await finished(app, restored.uuid);
      restore.push(performance.now() - restoring);

      const direct = await directTools(bin, databaseUrl, platform.addonDatabaseUrl, path.join(home, `round-${i}.dump`), i);
      dump.push(direct.dump);
      pgRestore.push(direct.restore);
      createDb.push(direct.createDb);
      directBytes = direct.bytes;
      console.log(
        `round ${i}: capture ${s(capture.at(-1)!)} s (pg_dump ${s(direct.dump)} s), restore ${s(restore.at(-1)!)} s (pg_restore ${s(direct.restore)} s)`,
      );
    }
    await call("DELETE", `/apps/${app}`);

    console.log(`\nPGBackups through the data API on the local platform (${mib(filled.databaseBytes)} database, ${rounds} rounds, ${os.cpus().length} CPUs)\n`);
    const rows: Array<[string, number[]]> = [
      ["capture (POST .../backups -> succeeded)", capture],
      ["  pg_dump --format=custom directly", dump],
      ["restore (POST .../restores -> succeeded)", restore],
      ["  pg_restore --no-owner --no-acl directly", pgRestore],
      ["  create database for it (not in the ratio)", createDb],
    ];
    printTimings(rows, 0);
    const captureRatio = median(capture) / median(dump);
    const restoreRatio = median(restore) / median(pgRestore);
    const verdict = (ratio: number) => (ratio <= GOAL_RATIO ? "met" : "missed");
    console.log(
      `\ncapture median ${s(median(capture))} s, pg_dump ${s(median(dump))} s: ${captureRatio.toFixed(2)}x (goal <= ${GOAL_RATIO}x ${verdict(captureRatio)})`,
    );
    console.log(
      `restore median ${s(median(restore))} s, pg_restore ${s(median(pgRestore))} s: ${restoreRatio.toFixed(2)}x (goal <= ${GOAL_RATIO}x ${verdict(restoreRatio)})`,
    );
    console.log(`dump size: ${mib(platformBytes)} through the platform, ${mib(directBytes)} directly`);
    return 0;
  } finally {
    await dispatcher.close();
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Fills the database with about `mb` MB of table data as its own role: an int primary key
 * and 128 hex characters a row (random-ish, so the dump compresses as real data does).
 */
async function fill(url: string, mb: number): Promise<{ rows: number; tableBytes: number; databaseBytes: number }> {
  const rows = Math.max(1, Math.round((mb * 1024 * 1024) / ROW_BYTES));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Filling more than a minute's worth of rows is expected here.
    await client.query("set statement_timeout = 0");
    await client.query("create table bench_rows (id int primary key, body text not null)");
    await client.query(
      `insert into bench_rows select g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text)
       from generate_series(1, $1::int) g`,
      [rows],
    );
    await client.query("vacuum analyze bench_rows");
    const { rows: sizes } = await client.query<{ table: string; database: string }>(
      "select pg_total_relation_size('bench_rows')::text as table, pg_database_size(current_database())::text as database",
    );
    return { rows, tableBytes: Number(sizes[0]!.table), databaseBytes: Number(sizes[0]!.database) };
  } finally {
    await client.end();
  }
}

/**
 * The floor of one round, as plain child processes: pg_dump with the database's own
 * credentials (leaving out the platform's schemas and extension, as the host does) to
 * `file`, then pg_restore of it into a fresh database owned by the same role. The server
 * admits a tenant role to its own database alone, so the restore connects as the
 * administration role and works as the tenant (`--role`), which then owns what it makes.
 */
async function directTools(
  bin: string,
  url: string,
  adminUrl: string,
  file: string,
  round: number,
): Promise<{ dump: number; restore: number; createDb: number; bytes: number }> {
  const role = decodeURIComponent(new URL(url).username);
  const dumping = performance.now();
  await tool(
    path.join(bin, "pg_dump"),
    [
      "--format=custom",
      "--no-password",
      ...PLATFORM_SCHEMAS.map((schema) => `--exclude-schema=${schema}`),
      "--exclude-extension=pg_stat_statements",
      `--file=${file}`,
    ],
    url,
  );
  const dump = performance.now() - dumping;
  const bytes = statSync(file).size;

  const name = `bench_restore_${round}`;
  const creating = performance.now();
  await admin(adminUrl, `create database ${name} owner ${pg.escapeIdentifier(role)}`);
  const createDb = performance.now() - creating;
  try {
    const target = new URL(adminUrl);
    target.pathname = `/${name}`;
    const restoring = performance.now();
    await tool(path.join(bin, "pg_restore"), ["--no-owner", "--no-acl", "--no-password", `--role=${role}`, file], target.toString());
    return { dump, restore: performance.now() - restoring, createDb, bytes };
  } finally {
    await admin(adminUrl, `drop database if exists ${name} with (force)`);
    rmSync(file, { force: true });
  }
}

/** Runs a PostgreSQL client tool against `url`, its password given in the environment rather than on the command line. */
async function tool(file: string, args: string[], url: string): Promise<void> {
  const target = new URL(url);
  const password = decodeURIComponent(target.password);
  target.password = "";
  try {
    await execFileAsync(file, [...args, `--dbname=${target}`], { env: { ...process.env, PGPASSWORD: password }, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`${path.basename(file)} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
  }
}

/** One statement as the add-on server's administration role. */
async function admin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const s = (ms: number) => (ms / 1000).toFixed(2);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
