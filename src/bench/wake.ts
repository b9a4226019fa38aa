import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { fetch, request } from "undici";
import { openDb } from "../db/client.ts";
import { apps } from "../db/schema/index.ts";
import { freePort } from "../node/ports.ts";
import { median, printTimings } from "./timings.ts";
import { startPlatform, type Platform } from "../local/platform.ts";
import { HEARTBEAT_INTERVAL_MS } from "../services/fleet/hosts.ts";
import { IDLE_AFTER_MS } from "../services/eco/sleep.ts";
import { deploySampleApp, dynoAddress, dynoStates, localDispatcher, SAMPLE_APP_JS, webDynoPort, type SampleApp } from "./sample-app.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface WakeBenchOptions {
  rounds: number;
}

/**
 * Waking a sleeping eco app on the local platform: the app is put to sleep as the
 * platform does it (its last routed request 31 minutes ago, then the cron trigger), and
 * a request through the router is timed to its first byte, each round at a different
 * point of the host's heartbeat cycle. The dyno's own `up` line shows what of the wake
 * is the boot on its host. The baseline is the same app
 * source started by hand (`node server.js` with a PORT), timed from spawn to its first
 * HTTP answer. Goal: wake within 1.3x the bare boot + 300 ms.
 */
export async function run(options: WakeBenchOptions): Promise<number> {
  const { rounds } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({
    home,
    quiet: !process.env.DYNOPLANE_BENCH_VERBOSE,
    ephemeral: true,
    workerVars: { RATE_LIMIT_PER_HOUR: "100000000" },
  });
  try {
    const sample = await deploySampleApp(platform);
    const bareDir = path.join(home, "bare");
    mkdirSync(bareDir);
    writeFileSync(path.join(bareDir, "server.js"), SAMPLE_APP_JS);

    const wakes: number[] = [];
    const hostUp: number[] = [];
    const awake: number[] = [];
    const bare: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      bare.push(await bareBoot(bareDir));
      await putToSleep(platform, sample);
      // The router sends a woken app traffic once its host's heartbeat reports the dyno up,
      // and visitors arrive at any moment of that cycle: each round waits a different
      // fraction of the interval, as the bench's own steps would otherwise start every
      // round at the same moment just after a heartbeat.
      await new Promise((r) => setTimeout(r, ((i - 1) / rounds) * HEARTBEAT_INTERVAL_MS));
      const sentAt = Date.now();
      wakes.push(await firstByte(`${sample.appUrl}/`, platform.tls.caPath));
      hostUp.push((await upLoggedAt(platform.apiUrl, sample, sentAt)) - sentAt);
      awake.push(await firstByte(`${sample.appUrl}/`, platform.tls.caPath));
      console.log(
        `round ${i}: wake ${wakes.at(-1)!.toFixed(0)} ms (dyno up on its host after ${hostUp.at(-1)!.toFixed(0)} ms), bare boot ${bare.at(-1)!.toFixed(0)} ms, awake ${awake.at(-1)!.toFixed(0)} ms`,
      );
    }

    const wake = median(wakes);
    const boot = median(bare);
    const budget = 1.3 * boot + 300;
    console.log(`\nWaking a sleeping app on the local platform (${rounds} rounds, ${os.cpus().length} CPUs)\n`);
    const rows: Array<[string, number[]]> = [
      ["wake (request to a sleeping app -> first byte, through the router)", wakes],
      ['dyno up on its host (its "State changed from starting to up" line)', hostUp],
      ["bare boot (spawn node server.js -> first HTTP answer)", bare],
      ["awake (the same request once the app is up, new connection)", awake],
    ];
    printTimings(rows, 0);
    console.log(
      `\nwake median ${wake.toFixed(0)} ms vs budget 1.3 x ${boot.toFixed(0)} + 300 = ${budget.toFixed(0)} ms: goal ${wake <= budget ? "met" : "missed"}`,
    );
    return 0;
  } finally {
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * Sleeps the app the way the platform does: its last routed request moves 31 minutes
 * back, the cron trigger runs, and the dyno reads `idle` with its process gone.
 */
async function putToSleep(platform: Platform, sample: SampleApp): Promise<void> {
  const port = await webDynoPort(platform.databaseUrl, sample.appId);
  const host = await dynoAddress(port);
  const handle = await openDb(platform.databaseUrl);
  try {
    await handle.db
      .update(apps)
      .set({ lastRequestAt: new Date(Date.now() - IDLE_AFTER_MS - 60_000) })
      .where(eq(apps.id, sample.appId));
  } finally {
    await handle.close();
  }
  const cron = await platform.fireScheduled();
  if (!cron.ok) throw new Error(`the scheduled run: ${cron.outcome}`);
  await until("the dyno to read idle", async () => (await dynoStates(platform.apiUrl, sample)).join(",") === "idle", 30_000);
  await until(`the dyno's process to stop listening on ${host}:${port}`, async () => !(await accepts(host, port)), 45_000);
}

/** Milliseconds from sending a GET over a new connection to its response headers (the body must be `ok`). */
async function firstByte(url: string, caPath: string): Promise<number> {
  const dispatcher = localDispatcher(caPath);
  try {
    const started = performance.now();
    const res = await request(url, { dispatcher });
    const elapsed = performance.now() - started;
    const body = await res.body.text();
    if (res.statusCode !== 200 || body !== "ok") throw new Error(`${url}: ${res.statusCode} ${body.slice(0, 200)}`);
    return elapsed;
  } finally {
    await dispatcher.close();
  }
}

/**
 * When the dyno's host logged it `up` after `since` (epoch ms), from the app's platform
 * log lines: what the host knew, beside what the router waited for.
 */
async function upLoggedAt(apiUrl: string, sample: SampleApp, since: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const session = await fetch(`${apiUrl}/apps/${sample.app}/log-sessions`, {
      method: "POST",
      headers: sample.headers,
      body: JSON.stringify({ lines: 20, source: "heroku" }),
      dispatcher: sample.dispatcher,
    });
    const url = ((await session.json()) as { logplex_url: string }).logplex_url;
    const text = await (await fetch(url, { dispatcher: sample.dispatcher })).text();
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: ") || !line.endsWith("State changed from starting to up")) continue;
      const at = Date.parse(line.slice(6, line.indexOf(" ", 6)));
      if (at >= since) return at;
    }
    if (Date.now() > deadline) return NaN;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts `node server.js` with a fresh PORT and times spawn to the first HTTP answer; stops it after. */
async function bareBoot(dir: string): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn("node", ["server.js"], { cwd: dir, env: { PATH: process.env.PATH, PORT: String(port) }, stdio: "ignore" });
  const exited = new Promise((r) => child.once("exit", r));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (await answers(port)) return performance.now() - started;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`node server.js did not answer on ${port}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Whether a plain GET to 127.0.0.1:port gets a 200 on a new connection. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once("error", () => resolve(false));
  });
}

/** Whether something accepts TCP connections on host:port (a gone sandbox: nothing does, soon). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    socket.setTimeout(1_000, () => (socket.destroy(), resolve(false)));
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
