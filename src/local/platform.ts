import type { PythonBuildSettings } from "../agent/builder/python.ts";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { isNeonUrl, openDb } from "../db/client.ts";
import { runMigrations } from "../node/migrate.ts";
import { countAccounts, createAccount } from "../services/access/accounts.ts";
import { createAuthorization } from "../services/access/authorizations.ts";
import exitHook from "async-exit-hook";
import { APPS_DOMAIN, cliEnvironment, exportLines, prepareCliCache } from "./cli-env.ts";
import { applyOfflineEnv } from "./offline.ts";
import { findPgBouncer, startPgBouncer, type LocalPooler } from "./pgbouncer.ts";
import { startLocalHost, type LocalHost } from "./host.ts";
import { ensureSigningKey } from "./keys.ts";
import { freePort } from "../node/ports.ts";
import { startEmbeddedPostgres, type LocalPostgres } from "./postgres.ts";
import { postgresUser, serviceDir } from "./postgres-server.ts";
import { startAddonPostgres, type AddonPostgres } from "./addon-postgres.ts";
import { ensureLocalTls, type LocalTls } from "./tls.ts";
import { forgetLocalDatabase, rememberLocalDatabase } from "./running.ts";
import { fireScheduled, startLocalCron, wranglerCrons, type LocalCron, type ScheduledOutcome } from "./cron.ts";
import { ROOT, startWorker, type LocalWorker } from "./worker.ts";
import { readWranglerConfig } from "./workerd-config.ts";

export const DEFAULT_PORT = 5443;
export const FIRST_ACCOUNT_EMAIL = "admin@dynoplane.localhost";

export interface PlatformOptions {
  /** Where data, certificates and state live (`.dynoplane/` for `npm start`). */
  home: string;
  port?: number;
  /** Use this database instead of the embedded one. */
  databaseUrl?: string;
  quiet?: boolean;
  /** Throwaway data (tests): a faster, non-durable Postgres. */
  ephemeral?: boolean;
  /** Run no host agent (API-only tests and benchmarks). */
  noHost?: boolean;
  /** Extra or overriding Worker variables (e.g. a higher rate limit for benchmarks). */
  workerVars?: Record<string, string>;
  /** Run the agent's tenant code without sandboxes (`dynoplane host --unsafe-no-sandbox`). */
  unsafeNoSandbox?: boolean;
  /** The schedules the Worker's scheduled handler is fired on (default: wrangler.toml's crons; empty: never). */
  cron?: string[];
  /** Where the agent's Python builds get packages (`dynoplane host --python-packages --python-index`). */
  python?: Partial<PythonBuildSettings>;
  /**
   * How long one of the Worker's health checks may take before it counts as failed (three in
   * a row restart workerd; default 10 s, so a merely busy Worker is left alone).
   */
  healthTimeoutMs?: number;
  /** Seconds between the local agent's metrics samples of its dynos (default 20, as on Heroku). */
  metricsEveryS?: number;
}

export interface FirstAccount {
  email: string;
  password: string;
  apiKey: string;
}

export interface Platform {
  port: number;
  /** The local host agent's host id, when one runs. */
  hostId?: string;
  /** The processes of the platform's parts (new ones after they were started again). */
  pids(): { postgres?: number; pgbouncer?: number; worker?: number; agent?: number };
  apiUrl: string;
  databaseUrl: string;
  /** What the Worker's HYPERDRIVE binding reaches: PgBouncer in front of databaseUrl (unset for a Neon URL). */
  workerDatabaseUrl?: string;
  /** Superuser URL when the embedded Postgres runs. */
  adminDatabaseUrl?: string;
  /** The add-on cluster's administration URL (heroku-postgresql databases): its own role, no superuser. */
  addonDatabaseUrl: string;
  tls: LocalTls;
  /** Set when this start created the first account. */
  firstAccount?: FirstAccount;
  /** Variables that point the heroku CLI and git at this platform. */
  cliEnv: Record<string, string>;
  /** What the Worker printed lately (its scheduled runs log a JSON line per job). */
  workerOutput(): string;
  /** Runs the Worker's scheduled handler once, as a cron trigger at `time` (default now) would. */
  fireScheduled(cron?: string, time?: Date): Promise<ScheduledOutcome>;
  /**
   * Starts another workerd with this platform's Worker configuration but `overrides`, on a
   * port and Durable Object state of its own, sharing the database and the dynos (the
   * benchmarks compare two settings side by side). Stopped with the platform.
   */
  startTwinWorker(overrides: Record<string, string>): Promise<{ port: number; pid(): number | undefined }>;
  stop(): Promise<void>;
}

/** Variables the local platform sets itself: its addresses and database, not the operator's to change. */
const PLATFORM_OWNED_VARS = new Set(["API_HOST", "APPS_DOMAIN", "PUBLIC_PORT_SUFFIX", "CLIENT_ADDRESS_HEADER", "DATABASE_URL"]);

/**
 * The Worker variables of wrangler.toml's `[vars]` that are set in the environment (for
 * `npm start`: `ECO_IDLE_MINUTES=5 npm start`), except those the platform owns.
 */
export function workerVarsFromEnv(env: NodeJS.ProcessEnv = process.env, file = path.join(ROOT, "wrangler.toml")): Record<string, string> {
  const { vars } = readWranglerConfig(file);
  const picked: Record<string, string> = {};
  for (const name of Object.keys(vars)) {
    const value = env[name];
    if (value !== undefined && !PLATFORM_OWNED_VARS.has(name)) picked[name] = value;
  }
  return picked;
}

/**
 * Brings up the whole control plane on this machine: Postgres (embedded unless a URL is
 * given), migrations, the Worker in workerd over HTTPS with a local CA, and a first
 * account when there is none.
 */
export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  applyOfflineEnv();
  const home = path.resolve(opts.home);
  await fs.mkdir(home, { recursive: true });
  // Others (dynos among them) may pass through to what they are given, never list or read:
  // the database, keys, blobs and logs below are private to their owners.
  await fs.chmod(home, 0o711);
  const port = opts.port ?? (await freePort());
  const hostPort = `localhost:${port}`;
  const tls = await ensureLocalTls(path.join(home, "tls"), ["localhost", `*.${APPS_DOMAIN}`, "127.0.0.1"]);

  let pg: LocalPostgres | undefined;
  let addonPg: AddonPostgres | undefined;
  let pooler: LocalPooler | undefined;
  let worker: LocalWorker | undefined;
  const twins: LocalWorker[] = [];
  let host: LocalHost | undefined;
  let cron: LocalCron | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      cron?.stop();
      await forgetLocalDatabase(home).catch(() => {});
      await host?.stop().catch(() => {});
      await worker?.stop().catch(() => {});
      for (const twin of twins) await twin.stop().catch(() => {});
      await pooler?.stop().catch(() => {});
      await pg?.stop().catch(() => {});
      await addonPg?.stop().catch(() => {});
      await addonPg?.release().catch(() => {});
    })());
  // Ctrl-C and other exits: the Worker runs in a process group of its own, so it is stopped explicitly.
  // Stopping waits for dynos to end (SIGTERM, then SIGKILL after 30 s), so allow for it.
  exitHook.forceExitTimeout(45_000);
  exitHook((done) => void stop().then(done));
  try {
    // The database servers run as the postgres user (under root), which must reach their data.
    const services = await serviceDir(home, postgresUser());
    if (services.moved) console.log(`The postgres user cannot reach ${home} (a directory above it is private): the databases live in ${services.dir}.`);
    if (!opts.databaseUrl) pg = await startEmbeddedPostgres(path.join(services.dir, "postgres"), { quiet: opts.quiet, ephemeral: opts.ephemeral });
    const databaseUrl = opts.databaseUrl ?? pg!.url;
    // Add-on databases live on a cluster of their own: tenants never share a server with the control plane.
    addonPg = await startAddonPostgres(services.dir, tls, opts);
    await runMigrations(databaseUrl);
    const firstAccount = await ensureFirstAccount(databaseUrl);
    const pgbouncer = findPgBouncer();
    if (pg && pgbouncer) {
      pooler = await startPgBouncer({
        binary: pgbouncer,
        dir: path.join(services.dir, "pgbouncer"),
        adminUrl: pg.adminUrl,
        url: pg.url,
        runAs: postgresUser(),
      });
    }

    // As Hyperdrive in production: the Worker reaches its database through the binding
    // (a Neon URL given as DATABASE_URL keeps Neon's own driver).
    const hyperdrive = isNeonUrl(databaseUrl) ? undefined : (pooler?.url ?? databaseUrl);
    const workerVars = {
      DATABASE_URL: pooler?.url ?? databaseUrl,
      COMMAND_SIGNING_KEY: await ensureSigningKey(path.join(home, "signing-key.jwk")),
      API_HOST: hostPort,
      APPS_DOMAIN,
      PUBLIC_PORT_SUFFIX: `:${port}`,
      CLIENT_ADDRESS_HEADER: "",
      // The agent runs here: the router reaches dynos at their sandboxes' addresses.
      ROUTE_TO_DYNO_ADDRESSES: "true",
      ADDON_POSTGRES_ADMIN_URL: addonPg.adminUrl,
      ADDON_POSTGRES_PUBLIC_ADDRESS: addonPg.publicAddress,
      ...opts.workerVars,
    };
    worker = await startWorker({
      port,
      tls,
      stateDir: path.join(home, "worker"),
      quiet: opts.quiet,
      hyperdrive,
      vars: workerVars,
      healthTimeoutMs: opts.healthTimeoutMs,
    });
    // Cloudflare fires the cron triggers; locally the platform does, into the same handler.
    cron = startLocalCron({ controlSocket: worker.controlSocket, schedules: opts.cron ?? wranglerCrons() });
    if (!opts.noHost) {
      host = await startLocalHost({
        home,
        databaseUrl,
        apiUrl: `https://${hostPort}`,
        tls,
        quiet: opts.quiet,
        unsafeNoSandbox: opts.unsafeNoSandbox,
        allowServices: addonPg.dynoReachable ? [addonPg.publicAddress] : [],
        python: opts.python,
        metricsEveryS: opts.metricsEveryS,
      });
    }
    // Operator commands (`dynoplane accounts:create`, `cron:run`) find the running platform here.
    await rememberLocalDatabase(home, databaseUrl, port);
    const cliCache = path.join(home, "heroku-cli-cache");
    await prepareCliCache(cliCache);
    return {
      port,
      hostId: host?.hostId,
      pids: () => ({ postgres: pg?.pid(), pgbouncer: pooler?.pid(), worker: worker?.pid(), agent: host?.pid() }),
      apiUrl: `https://${hostPort}`,
      databaseUrl,
      workerDatabaseUrl: hyperdrive,
      adminDatabaseUrl: pg?.adminUrl,
      addonDatabaseUrl: addonPg.adminUrl,
      tls,
      firstAccount,
      cliEnv: cliEnvironment(hostPort, tls, cliCache),
      workerOutput: () => worker?.output() ?? "",
      fireScheduled: (cronExpr = wranglerCrons()[0] ?? "*/10 * * * *", time = new Date()) => fireScheduled(worker!.controlSocket, cronExpr, time),
      async startTwinWorker(overrides) {
        const twinPort = await freePort();
        const twin = await startWorker({
          port: twinPort,
          tls,
          stateDir: path.join(home, `worker-twin-${twins.length + 1}`),
          quiet: true,
          hyperdrive,
          bundle: worker!.bundle,
          vars: { ...workerVars, API_HOST: `localhost:${twinPort}`, PUBLIC_PORT_SUFFIX: `:${twinPort}`, ...overrides },
        });
        twins.push(twin);
        return { port: twinPort, pid: () => twin.pid() };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function ensureFirstAccount(databaseUrl: string): Promise<FirstAccount | undefined> {
  const handle = await openDb(databaseUrl);
  try {
    if ((await countAccounts(handle.db)) > 0) return undefined;
    const password = crypto.randomUUID().replace(/-/g, "").slice(0, 20);
    const account = await createAccount(handle.db, { email: FIRST_ACCOUNT_EMAIL, password });
    const { token } = await createAuthorization(handle.db, account.id, { description: "API key", isDefault: true }, { email: account.email });
    return { email: account.email, password, apiKey: token };
  } finally {
    await handle.close();
  }
}

/**
 * Writes `home/env` for `source`: the CLI exports plus HEROKU_API_KEY of the first
 * account (kept from an earlier start, since only a hash of it is stored).
 */
export async function writeEnvFile(home: string, platform: Platform): Promise<string> {
  const file = path.join(home, "env");
  let apiKey = platform.firstAccount?.apiKey;
  if (!apiKey && existsSync(file)) apiKey = /HEROKU_API_KEY=(\S+)/.exec(readFileSync(file, "utf8"))?.[1];
  const env = { ...platform.cliEnv, ...(apiKey ? { HEROKU_API_KEY: apiKey } : {}) };
  await fs.writeFile(file, exportLines(env) + "\n", { mode: 0o600 });
  return file;
}
