import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startPlatform } from "../local/platform.ts";
import { formatResults, load, type LoadResult } from "./load.ts";
import { benchToken } from "./account.ts";
import { cpuMs, treeCpuMs } from "./cpu.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface ApiBenchOptions {
  seconds: number;
  connections: number;
}

/**
 * Platform API throughput and latency on the local platform at 32 connections:
 * a trivial route (no database) as the baseline, `GET /apps/{app}` (token lookup,
 * rate limit, owner-scoped app lookup) and `PATCH /apps/{app}/config-vars` (a
 * transaction that also cuts a release). Goal: p99 < 25 ms, GET/trivial >= 0.5.
 */
export async function run(options: ApiBenchOptions): Promise<number> {
  const { seconds, connections } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  // The budget is raised so the benchmark measures the rate limiter's cost, not its refusals.
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, noHost: true, workerVars: { RATE_LIMIT_PER_HOUR: "100000000" } });
  try {
    const token = await benchToken(platform.databaseUrl);

    const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}` };
    const created = await fetchJson(
      platform.apiUrl + "/apps",
      { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: "{}" },
      platform.tls.caPath,
    );
    const app = created.name as string;
    let n = 0;
    const specs = [
      { label: "GET /health (trivial)", url: `${platform.apiUrl}/health` },
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
    const parts = () => {
      const pids = platform.pids();
      return { workerd: cpuMs(pids.worker), postgres: treeCpuMs(pids.postgres), pgbouncer: cpuMs(pids.pgbouncer) };
    };
    for (const spec of specs) {
      await load({ ...spec, connections, seconds: 2 }); // warm-up
      const before = parts();
      const result = await load({ ...spec, connections, seconds });
      const after = parts();
      const per = (k: keyof typeof before) => (((after[k] - before[k]) / Math.max(1, result.requests)) * 1000).toFixed(0);
      cpu.push(`  ${spec.label}: workerd ${per("workerd")}, postgres ${per("postgres")}, pgbouncer ${per("pgbouncer")}`);
      results.push(result);
    }
    const [trivial, getApp, patch] = results as [LoadResult, LoadResult, LoadResult];
    console.log(`\nPlatform API on the local platform (${connections} connections, ${seconds} s per route, ${os.cpus().length} CPUs)\n`);
    console.log(formatResults(results));
    console.log(`\nCPU ms per 1,000 requests, by process:\n${cpu.join("\n")}`);
    console.log(`\nGET /apps/{app} throughput / trivial route: ${(getApp.rps / trivial.rps).toFixed(2)} (goal >= 0.50)`);
    console.log(`p99: GET /apps/{app} ${getApp.p99.toFixed(1)} ms, PATCH config-vars ${patch.p99.toFixed(1)} ms (goal < 25 ms)`);
    const failures = results.reduce((n, r) => n + r.errors + r.non2xx, 0);
    if (failures) console.log(`warning: ${failures} requests failed`);
    return 0;
  } finally {
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
