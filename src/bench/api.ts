import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { spawnService, type ManagedChild } from "../local/child.ts";
import { startPlatform, type Platform } from "../local/platform.ts";
import { bundleWorker, ROOT } from "../local/worker.ts";
import { httpsSocket, hyperdriveTo, readWranglerConfig } from "../local/workerd-config.ts";
import { freePort, waitForPort } from "../node/ports.ts";
import { formatResults, load, type LoadResult, type LoadSpec } from "./load.ts";
import { benchToken } from "./account.ts";
import { cpuMs, treeCpuMs } from "./cpu.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface ApiBenchOptions {
  seconds: number;
  connections: number;
}

/**
 * Platform API throughput and latency on the local platform at 32 connections:
 * a trivial route (no database) as the baseline, `GET /apps/{app}` (token and
 * owner-scoped app lookup in one query, rate limit) and `PATCH /apps/{app}/config-vars`
 * (a transaction that also cuts a release); beside them the floor of any route that
 * reads the database, a Worker that opens its connection and runs one query (see
 * floor-worker.ts). Goal: p99 < 25 ms, GET/trivial >= 0.5.
 */
export async function run(options: ApiBenchOptions): Promise<number> {
  const { seconds, connections } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  // The budget is raised so the benchmark measures the rate limiter's cost, not its refusals.
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, noHost: true, workerVars: { RATE_LIMIT_PER_HOUR: "100000000" } });
  let floor: { port: number; service: ManagedChild } | undefined;
  try {
    floor = await startFloorWorker(path.join(home, "floor"), platform);
    const token = await benchToken(platform.databaseUrl);

    const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}` };
    const created = await fetchJson(
      platform.apiUrl + "/apps",
      { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: "{}" },
      platform.tls.caPath,
    );
    const app = created.name as string;
    let n = 0;
    const specs: Array<Omit<LoadSpec, "connections" | "seconds"> & { workerd?: number }> = [
      { label: "GET /health (trivial)", url: `${platform.apiUrl}/health` },
      // Its CPU is its own workerd's, not the platform's.
      { label: "floor: connect + 1 query", url: `https://localhost:${floor.port}/`, workerd: floor.service.child.pid },
      { label: "GET /apps/{app}", url: `${platform.apiUrl}/apps/${app}`, headers },
      {
        label: "PATCH /apps/{app}/config-vars",
        url: `${platform.apiUrl}/apps/${app}/config-vars`,
        method: "PATCH" as const,
        headers: { ...headers, "Content-Type": "application/json" },
        body: () => JSON.stringify({ BENCH_COUNTER: String(++n) }),
      },
    ];
    const results: LoadResult[] = [];
    const cpu: string[] = [];
    for (const spec of specs) {
      const parts = () => {
        const pids = platform.pids();
        return { workerd: cpuMs(spec.workerd ?? pids.worker), postgres: treeCpuMs(pids.postgres), pgbouncer: cpuMs(pids.pgbouncer) };
      };
      await load({ ...spec, connections, seconds: 2 }); // warm-up
      const before = parts();
      const result = await load({ ...spec, connections, seconds });
      const after = parts();
      const per = (k: keyof typeof before) => (((after[k] - before[k]) / Math.max(1, result.requests)) * 1000).toFixed(0);
      cpu.push(`  ${spec.label}: workerd ${per("workerd")}, postgres ${per("postgres")}, pgbouncer ${per("pgbouncer")}`);
      results.push(result);
    }
    const [trivial, floorResult, getApp, patch] = results as [LoadResult, LoadResult, LoadResult, LoadResult];
    console.log(`\nPlatform API on the local platform (${connections} connections, ${seconds} s per route, ${os.cpus().length} CPUs)\n`);
    console.log(formatResults(results));
    console.log(`\nCPU ms per 1,000 requests, by process:\n${cpu.join("\n")}`);
    console.log(`\nGET /apps/{app} throughput / trivial route: ${(getApp.rps / trivial.rps).toFixed(2)} (goal >= 0.50)`);
    console.log(
      `GET /apps/{app} throughput / the floor: ${(getApp.rps / floorResult.rps).toFixed(2)}; the floor / trivial route: ${(floorResult.rps / trivial.rps).toFixed(2)}`,
    );
    console.log(
      `p99: GET /apps/{app} ${getApp.p99.toFixed(1)} ms, PATCH config-vars ${patch.p99.toFixed(1)} ms (goal < 25 ms); the floor ${floorResult.p99.toFixed(1)} ms`,
    );
    const failures = results.reduce((n, r) => n + r.errors + r.non2xx, 0);
    if (failures) console.log(`warning: ${failures} requests failed`);
    return 0;
  } finally {
    await floor?.service.stop(2000).catch(() => {});
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

async function fetchJson(url: string, init: { method: string; headers: Record<string, string>; body?: string }, caPath: string) {
  const { Agent, fetch } = await import("undici");
  const { readFileSync } = await import("node:fs");
  const res = await fetch(url, { ...init, dispatcher: new Agent({ connect: { ca: readFileSync(caPath) } }) });
  if (!res.ok) throw new Error(`${init.method} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/**
 * The floor Worker (floor-worker.ts), bundled as the control plane is, in a workerd of its
 * own on HTTPS with the platform's certificate, its HYPERDRIVE binding reaching the same
 * PgBouncer as the control plane's.
 */
async function startFloorWorker(dir: string, platform: Platform): Promise<{ port: number; service: ManagedChild }> {
  if (!platform.workerDatabaseUrl) throw new Error("the floor needs the local database behind PgBouncer (no Neon URL)");
  // The control plane's runtime settings, so the floor runs as it does.
  const { compatibilityDate, compatibilityFlags } = readWranglerConfig(path.join(ROOT, "wrangler.toml"));
  const configFile = path.join(dir, "wrangler.toml");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    configFile,
    [
      `name = "floor"`,
      `main = ${JSON.stringify(path.join(ROOT, "src", "bench", "floor-worker.ts"))}`,
      `compatibility_date = ${JSON.stringify(compatibilityDate)}`,
      `compatibility_flags = ${JSON.stringify(compatibilityFlags)}`,
      "",
    ].join("\n"),
  );
  const bundle = bundleWorker(path.join(dir, "bundle"), configFile);
  const hyperdrive = hyperdriveTo(platform.workerDatabaseUrl);
  const port = await freePort();
  const { serializeConfig } = await import("miniflare");
  const config = serializeConfig({
    services: [
      {
        name: "floor",
        worker: {
          modules: [{ name: path.basename(bundle), esModule: readFileSync(bundle, "utf8") }],
          compatibilityDate,
          compatibilityFlags,
          bindings: [hyperdrive.binding],
        },
      },
      hyperdrive.service,
    ],
    sockets: [
      httpsSocket(`127.0.0.1:${port}`, "floor", {
        certificateChain: readFileSync(platform.tls.certPath, "utf8"),
        privateKey: readFileSync(platform.tls.keyPath, "utf8"),
      }),
    ],
  });
  const workerd: string = createRequire(import.meta.url)("workerd").default;
  const service = spawnService(workerd, ["serve", "--binary", "--experimental", "-"], { quiet: true, input: config });
  try {
    await waitForPort(port, "127.0.0.1", 30_000);
  } catch (err) {
    await service.stop(0);
    throw new Error(`the floor Worker did not start: ${String(err)}\n${service.output()}`);
  }
  return { port, service };
}
