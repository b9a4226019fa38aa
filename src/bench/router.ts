import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Agent, request, type Dispatcher } from "undici";
import { APPS_DOMAIN } from "../local/cli-env.ts";
import { startPlatform } from "../local/platform.ts";
import { formatResults, load, type LoadResult } from "./load.ts";
import { deploySampleApp, dynoAddress, webDynoPort } from "./sample-app.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface RouterBenchOptions {
  seconds: number;
  connections: number;
  sequential: number;
}

/**
 * The app-host router on the local platform: a web dyno that answers `ok` is driven at
 * 32 connections straight on its own port (plain HTTP on 127.0.0.1) and through the
 * router (`https://<app>.apps.localhost:<port>/`: TLS, workerd, the app and dyno lookups,
 * the host agent's proxy). The Worker's trivial `/health` over the same HTTPS separates
 * what TLS and wrangler cost from what routing costs. A single-connection pass of
 * sequential requests gives the latency the router adds without queueing.
 * Goal: routed/direct throughput >= 0.5, p50 added < 2 ms.
 */
export async function run(options: RouterBenchOptions): Promise<number> {
  const { seconds, connections, sequential } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, workerVars: { RATE_LIMIT_PER_HOUR: "100000000" } });
  try {
    const sample = await deploySampleApp(platform);
    const dynoPort = await webDynoPort(platform.databaseUrl, sample.appId);
    // The dyno's own address in its sandbox's network namespace: the floor, one veth hop away.
    const dynoHost = await dynoAddress(dynoPort);

    // Node does not resolve *.localhost: connect to 127.0.0.1 and name the app in Host.
    const https = `https://127.0.0.1:${platform.port}`;
    const specs = [
      { label: "direct: http://<dyno address>:<dyno port>/", url: `http://${dynoHost}:${dynoPort}/` },
      { label: `routed: https://<app>.${APPS_DOMAIN}/`, url: `${https}/`, headers: { Host: `${sample.app}.${APPS_DOMAIN}:${platform.port}` } },
      { label: "baseline: https://localhost/health", url: `${https}/health`, headers: { Host: `localhost:${platform.port}` } },
    ];
    const results: LoadResult[] = [];
    for (const spec of specs) {
      await load({ ...spec, connections, seconds: 2 }); // warm-up
      results.push(await load({ ...spec, connections, seconds }));
    }
    const [direct, routed, health] = results as [LoadResult, LoadResult, LoadResult];

    const plain = new Agent();
    const unloadedDirect = await sequentialLatency(`http://${dynoHost}:${dynoPort}/`, plain, sequential);
    const unloadedRouted = await sequentialLatency(`${sample.appUrl}/`, sample.dispatcher, sequential);
    const unloadedHealth = await sequentialLatency(`${platform.apiUrl}/health`, sample.dispatcher, sequential);
    await plain.close();

    const ratio = routed.rps / direct.rps;
    const added = routed.p50 - direct.p50;
    const addedUnloaded = unloadedRouted.p50 - unloadedDirect.p50;
    console.log(`\nRouter on the local platform (${connections} connections, ${seconds} s per target after a 2 s warm-up, ${os.cpus().length} CPUs)\n`);
    console.log(formatResults(results));
    console.log(`\nrouted / direct throughput: ${ratio.toFixed(2)} (goal >= 0.50: ${ratio >= 0.5 ? "met" : "missed"})`);
    console.log(`p50 added by the router at ${connections} connections: ${added.toFixed(1)} ms (goal < 2 ms: ${added < 2 ? "met" : "missed"})`);
    console.log(
      `routed / health throughput: ${(routed.rps / health.rps).toFixed(2)}; p50 routed - health: ${(routed.p50 - health.p50).toFixed(1)} ms (routing beyond TLS and wrangler)`,
    );
    console.log(`\nOne connection, ${sequential} sequential requests (no queueing):`);
    console.log(`  p50 direct ${unloadedDirect.p50.toFixed(2)} ms, routed ${unloadedRouted.p50.toFixed(2)} ms, health ${unloadedHealth.p50.toFixed(2)} ms`);
    console.log(`  p99 direct ${unloadedDirect.p99.toFixed(2)} ms, routed ${unloadedRouted.p99.toFixed(2)} ms, health ${unloadedHealth.p99.toFixed(2)} ms`);
    console.log(
      `  p50 added by the router: ${addedUnloaded.toFixed(2)} ms (${(unloadedRouted.p50 - unloadedHealth.p50).toFixed(2)} ms beyond the health route)`,
    );
    const failures = results.reduce((n, r) => n + r.errors + r.non2xx, 0) + unloadedDirect.failed + unloadedRouted.failed + unloadedHealth.failed;
    if (failures) console.log(`warning: ${failures} requests failed`);
    return 0;
  } finally {
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Latency percentiles (ms, sub-millisecond) of `n` requests sent one after another over one kept-alive connection. */
async function sequentialLatency(url: string, dispatcher: Dispatcher, n: number): Promise<{ p50: number; p99: number; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  for (let i = 0; i < n + 50; i++) {
    const started = performance.now();
    const res = await request(url, { dispatcher });
    await res.body.text();
    if (res.statusCode !== 200) failed++;
    if (i >= 50) times.push(performance.now() - started); // the first 50 warm the connection
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), failed };
}
