import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Agent, request, type Dispatcher } from "undici";
import { APPS_DOMAIN } from "../local/cli-env.ts";
import { startPlatform } from "../local/platform.ts";
import { cpuMs, treeCpuMs } from "./cpu.ts";
import { formatResults, load, type LoadResult } from "./load.ts";
import { findOrInstallNginx, startNginx, type Nginx, type NginxStyle } from "./nginx.ts";
import { deploySampleApp, dynoAddress, webDynoPort } from "./sample-app.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface RouterBenchOptions {
  seconds: number;
  connections: number;
  sequential: number;
}

/**
 * The app-host router on the local platform: a web dyno that answers `ok` is driven at
 * 32 connections straight on its own address (plain HTTP, one veth hop into its sandbox:
 * the floor), through nginx as an HTTPS reverse proxy to the same dyno (what Dokku and Piku
 * put in front; installed on demand), and through the router
 * (`https://<app>.apps.localhost:<port>/`: TLS, workerd, the routing table, the host agent's
 * proxy). The Worker's trivial `/health` over the same HTTPS separates what TLS and workerd
 * cost from what routing costs. Each run's CPU time is split between workerd, the agent and
 * nginx. A single-connection pass of sequential requests gives the latency the router adds
 * without queueing. Goal: routed >= 1.0x nginx, p50 added < 2 ms at one connection. Then the
 * routed load on two twin Workers, metrics collection on and off, in alternating rounds:
 * goal, collection costs under 5% of routed throughput.
 */
export async function run(options: RouterBenchOptions): Promise<number> {
  const { seconds, connections, sequential } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, workerVars: { RATE_LIMIT_PER_HOUR: "100000000" } });
  const nginxes: Array<Nginx & { style: NginxStyle }> = [];
  try {
    const sample = await deploySampleApp(platform);
    const dynoPort = await webDynoPort(platform.databaseUrl, sample.appId);
    // The dyno's own address in its sandbox's network namespace: the floor, one veth hop away.
    const dynoHost = await dynoAddress(dynoPort);
    const found = findOrInstallNginx();
    if ("binary" in found) {
      for (const style of ["dokku", "tuned"] as const) {
        const dir = path.join(home, `nginx-${style}`);
        const started = await startNginx({
          binary: found.binary,
          dir,
          upstream: `${dynoHost}:${dynoPort}`,
          certPath: platform.tls.certPath,
          keyPath: platform.tls.keyPath,
          style,
        });
        nginxes.push({ ...started, style });
      }
    }
    const nginx = nginxes[0];

    // Node does not resolve *.localhost: connect to 127.0.0.1 and name the app in Host.
    const https = `https://127.0.0.1:${platform.port}`;
    const appHost = `${sample.app}.${APPS_DOMAIN}:${platform.port}`;
    const specs = [
      { label: "direct: http://<dyno address>:<dyno port>/", url: `http://${dynoHost}:${dynoPort}/` },
      ...nginxes.map((n) => ({
        label: `nginx (${n.style === "dokku" ? "as Dokku sets it up" : "tuned"}) -> the dyno`,
        url: `https://127.0.0.1:${n.port}/`,
        headers: { Host: appHost },
        nginx: n,
      })),
      { label: `routed: https://<app>.${APPS_DOMAIN}/`, url: `${https}/`, headers: { Host: appHost } },
      { label: "baseline: https://localhost/health", url: `${https}/health`, headers: { Host: `localhost:${platform.port}` } },
    ];
    const results: LoadResult[] = [];
    const cpu: string[] = [];
    for (const spec of specs) {
      await load({ ...spec, connections, seconds: 2 }); // warm-up
      const proxy = "nginx" in spec ? spec.nginx : undefined;
      const before = { workerd: cpuMs(platform.pids().worker), agent: cpuMs(platform.pids().agent), nginx: treeCpuMs(proxy?.pid()) };
      const result = await load({ ...spec, connections, seconds });
      const per = (now: number, then: number) => (((now - then) / Math.max(1, result.requests)) * 1000).toFixed(0);
      cpu.push(
        `  ${spec.label}: workerd ${per(cpuMs(platform.pids().worker), before.workerd)}, agent ${per(cpuMs(platform.pids().agent), before.agent)}` +
          (proxy ? `, nginx ${per(treeCpuMs(proxy.pid()), before.nginx)}` : ""),
      );
      results.push(result);
    }
    const direct = results[0]!;
    // The goal is set against nginx as Dokku users get it; the tuned one is shown beside it.
    const viaNginx = nginx ? results[1]! : undefined;
    const viaTuned = nginxes[1] ? results[2]! : undefined;
    const [routed, health] = results.slice(-2) as [LoadResult, LoadResult];

    // What collecting the Metrics tab's numbers costs: the same routing on two twin Workers,
    // collection on and off (each with its own port and Durable Objects, sharing the database
    // and the dyno; neither hears from the agent), in alternating rounds so the machine's
    // drift falls on both alike, with each one's workerd CPU per request.
    const twins = { on: await platform.startTwinWorker({ COLLECT_METRICS: "true" }), off: await platform.startTwinWorker({ COLLECT_METRICS: "false" }) };
    const twinSpec = (which: "on" | "off") => ({
      label: `routed, metrics collection ${which}`,
      url: `https://127.0.0.1:${twins[which].port}/`,
      headers: { Host: `${sample.app}.${APPS_DOMAIN}:${twins[which].port}` },
    });
    const measured = async (which: "on" | "off") => {
      const before = cpuMs(twins[which].pid());
      const result = await load({ ...twinSpec(which), connections, seconds });
      return { ...result, cpu: ((cpuMs(twins[which].pid()) - before) / Math.max(1, result.requests)) * 1000 };
    };
    for (const which of ["on", "off"] as const) await load({ ...twinSpec(which), connections, seconds: 2 }); // warm-up
    const metricsRounds: Array<{ on: LoadResult & { cpu: number }; off: LoadResult & { cpu: number } }> = [];
    for (let round = 0; round < 3; round++) {
      const off = await measured("off");
      const on = await measured("on");
      metricsRounds.push({ on, off });
    }

    const plain = new Agent();
    const unloadedDirect = await sequentialLatency(`http://${dynoHost}:${dynoPort}/`, plain, sequential);
    const unloadedRouted = await sequentialLatency(`${sample.appUrl}/`, sample.dispatcher, sequential);
    const unloadedHealth = await sequentialLatency(`${platform.apiUrl}/health`, sample.dispatcher, sequential);
    const nginxAgent = new Agent({ connect: { ca: readFileSync(platform.tls.caPath), servername: "localhost" } });
    const unloadedNginx = nginx ? await sequentialLatency(`https://127.0.0.1:${nginx.port}/`, nginxAgent, sequential) : undefined;
    await plain.close();
    await nginxAgent.close();

    const addedUnloaded = unloadedRouted.p50 - unloadedDirect.p50;
    console.log(`\nRouter on the local platform (${connections} connections, ${seconds} s per target after a 2 s warm-up, ${os.cpus().length} CPUs)\n`);
    console.log(formatResults(results));
    console.log(`\nCPU ms per 1,000 requests, by process:\n${cpu.join("\n")}`);
    console.log(`\nrouted / direct throughput: ${(routed.rps / direct.rps).toFixed(2)}`);
    if (viaNginx) {
      const ratio = routed.rps / viaNginx.rps;
      console.log(`routed / nginx (as Dokku sets it up) throughput: ${ratio.toFixed(2)} (goal >= 1.00: ${ratio >= 1 ? "met" : "missed"})`);
      if (viaTuned) console.log(`routed / nginx (tuned) throughput: ${(routed.rps / viaTuned.rps).toFixed(2)}`);
    } else console.log(`routed / nginx throughput: not measured (${"missing" in found ? found.missing : "nginx did not start"})`);
    console.log(
      `routed / health throughput: ${(routed.rps / health.rps).toFixed(2)}; p50 routed - health: ${(routed.p50 - health.p50).toFixed(1)} ms (routing beyond TLS and workerd)`,
    );
    const mean = (pick: (r: (typeof metricsRounds)[number]) => number) => metricsRounds.reduce((n, r) => n + pick(r), 0) / metricsRounds.length;
    const rpsRatio = mean((r) => r.on.rps) / mean((r) => r.off.rps);
    console.log(`\nMetrics collection, two twin Workers (${metricsRounds.length} alternating rounds of ${seconds} s each):`);
    for (const [i, r] of metricsRounds.entries()) {
      console.log(
        `  round ${i + 1}: off ${r.off.rps.toFixed(0)} req/s (p99 ${r.off.p99} ms, workerd ${r.off.cpu.toFixed(0)} CPU ms per 1,000), on ${r.on.rps.toFixed(0)} req/s (p99 ${r.on.p99} ms, workerd ${r.on.cpu.toFixed(0)})`,
      );
    }
    console.log(`  routed throughput with collection / without: ${rpsRatio.toFixed(3)} (goal >= 0.95: ${rpsRatio >= 0.95 ? "met" : "missed"})`);
    console.log(`  workerd CPU per routed request with collection / without: ${(mean((r) => r.on.cpu) / mean((r) => r.off.cpu)).toFixed(3)}`);
    console.log(`\nOne connection, ${sequential} sequential requests (no queueing):`);
    const row = (label: string, pick: (r: { p50: number; p99: number }) => number) =>
      `  ${label} direct ${pick(unloadedDirect).toFixed(2)} ms, ${unloadedNginx ? `nginx ${pick(unloadedNginx).toFixed(2)} ms, ` : ""}routed ${pick(unloadedRouted).toFixed(2)} ms, health ${pick(unloadedHealth).toFixed(2)} ms`;
    console.log(row("p50", (r) => r.p50));
    console.log(row("p99", (r) => r.p99));
    console.log(
      `  p50 added by the router: ${addedUnloaded.toFixed(2)} ms (goal < 2 ms: ${addedUnloaded < 2 ? "met" : "missed"}; ${(unloadedRouted.p50 - unloadedHealth.p50).toFixed(2)} ms beyond the health route)`,
    );
    const failures =
      [...results, ...metricsRounds.flatMap((r) => [r.on, r.off])].reduce((n, r) => n + r.errors + r.non2xx, 0) +
      unloadedDirect.failed +
      unloadedRouted.failed +
      unloadedHealth.failed +
      (unloadedNginx?.failed ?? 0);
    if (failures) console.log(`warning: ${failures} requests failed`);
    return 0;
  } finally {
    for (const n of nginxes) await n.stop();
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
