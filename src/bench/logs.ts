import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Agent, fetch, type Dispatcher } from "undici";
import { APPS_DOMAIN } from "../local/cli-env.ts";
import { freePort, waitForPort } from "../node/ports.ts";
import { startPlatform } from "../local/platform.ts";
import { deployLogApp, LOG_APP_JS } from "./log-app.ts";
import { benchToken } from "./account.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface LogsBenchOptions {
  lines: number;
  rate: number;
  seconds: number;
}

/**
 * Log delivery on the local platform: a dyno writes lines stamped with the time of the
 * write and a tail client (the same SSE stream `heroku logs --tail` reads) parses the
 * stamp, giving write-to-screen latency over 1,000 lines; then the dyno writes as fast as
 * it can and the lines the tail receives per second are the sustained rate. The baseline
 * runs the same program outside the platform, its stdout relayed to the client over a
 * plain local HTTP event stream. Goal: p99 < 300 ms, >= 5,000 lines/s.
 */
export async function run(options: LogsBenchOptions): Promise<number> {
  const { lines, rate, seconds } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, workerVars: { RATE_LIMIT_PER_HOUR: "100000000" } });
  const baseline = await startBaseline(home);
  try {
    const dispatcher = new Agent({
      connect: { ca: readFileSync(platform.tls.caPath), lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) },
    });
    const token = await benchToken(platform.databaseUrl);
    const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
    const app = (await (await fetch(`${platform.apiUrl}/apps`, { method: "POST", headers, body: "{}", dispatcher })).json()) as { name: string };
    const appUrl = `https://${app.name}.${APPS_DOMAIN}:${platform.port}`;
    await deployLogApp({ apiUrl: platform.apiUrl, token, app: app.name, dispatcher }, `${appUrl}/`);
    const session = await fetch(`${platform.apiUrl}/apps/${app.name}/log-sessions`, {
      method: "POST",
      headers,
      body: JSON.stringify({ tail: true, lines: 0, dyno: "web.1", source: "app" }),
      dispatcher,
    });
    const streamUrl = ((await session.json()) as { logplex_url: string }).logplex_url;

    const measured = await measure({ streamUrl, appUrl, dispatcher, lines, rate, seconds });
    const base = await measure({ streamUrl: baseline.streamUrl, appUrl: baseline.appUrl, lines, rate, seconds });
    console.log(`\nLogs on the local platform (1 app, 1 tail client, ${os.cpus().length} CPUs)\n`);
    console.log(
      table([
        ["", "p50 ms", "p99 ms", "max ms", "lines", "lines/s (flood)"],
        ["dyno write -> tail client", ...row(measured)],
        ["baseline: stdout -> plain HTTP", ...row(base)],
      ]),
    );
    console.log(`\nlatency p99 / baseline: ${(measured.p99 / base.p99).toFixed(1)}x; throughput / baseline: ${(measured.rate / base.rate).toFixed(2)}`);
    console.log(`flood: the dyno wrote ${measured.written} lines in ${seconds} s, the tail received ${measured.received} (the rest dropped and counted)`);
    console.log(`goal: p99 < 300 ms (${measured.p99 < 300 ? "met" : "missed"}), >= 5,000 lines/s (${measured.rate >= 5000 ? "met" : "missed"})`);
    return 0;
  } finally {
    baseline.stop();
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

interface Measured {
  p50: number;
  p99: number;
  max: number;
  got: number;
  lines: number;
  rate: number;
  written: number;
  received: number;
}

const row = (m: Measured) => [m.p50.toFixed(1), m.p99.toFixed(1), m.max.toFixed(1), `${m.got}/${m.lines}`, m.rate.toFixed(0)];

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}

/** Paced lines for latency, then a flood for throughput, both read from one event stream. */
async function measure(o: { streamUrl: string; appUrl: string; dispatcher?: Dispatcher; lines: number; rate: number; seconds: number }): Promise<Measured> {
  const latencies: number[] = [];
  let floodLines = 0;
  let floodFirst = 0;
  let floodLast = 0;
  const controller = new AbortController();
  const res = await fetch(o.streamUrl, { headers: { Accept: "text/event-stream" }, signal: controller.signal, dispatcher: o.dispatcher });
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of res.body!) {
        const now = performance.timeOrigin + performance.now();
        const blocks = (buffer + decoder.decode(chunk as Uint8Array, { stream: true })).split("\n\n");
        buffer = blocks.pop()!;
        for (const block of blocks) {
          const data = block.slice(block.indexOf("data: ") + 6);
          const text = data.slice(data.indexOf("]: ") + 3);
          if (text.startsWith("lat ")) latencies.push(now - Number(text.slice(text.indexOf(" t=") + 3)));
          else if (text.startsWith("tp ")) {
            floodFirst ||= now;
            floodLast = now;
            floodLines++;
          }
        }
      }
    } catch {
      // aborted once measured
    }
  })();
  const ask = (p: string) => fetch(`${o.appUrl}${p}`, { dispatcher: o.dispatcher }).then((r) => r.json() as Promise<unknown>);
  await ask(`/paced?n=${o.lines}&rate=${o.rate}&prefix=lat`);
  const deadline = Date.now() + (o.lines / o.rate) * 1000 + 10_000;
  while (latencies.length < o.lines && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await ask(`/flood?s=${o.seconds}&prefix=tp`);
  await new Promise((r) => setTimeout(r, o.seconds * 1000 + 3_000));
  const { written } = (await ask("/flooding")) as { written: number };
  controller.abort();
  await reading;
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
  const window = (floodLast - floodFirst) / 1000;
  return {
    p50: at(0.5),
    p99: at(0.99),
    max: sorted.at(-1) ?? NaN,
    got: latencies.length,
    lines: o.lines,
    rate: window > 0 ? floodLines / window : 0,
    written,
    received: floodLines,
  };
}

/** The log app run directly, its stdout relayed to clients as a plain HTTP event stream. */
async function startBaseline(home: string): Promise<{ appUrl: string; streamUrl: string; stop(): void }> {
  const dir = path.join(home, "baseline");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "server.js"), LOG_APP_JS);
  const port = await freePort();
  const child = spawn(process.execPath, ["server.js"], {
    cwd: dir,
    env: { PATH: process.env.PATH, PORT: String(port), DYNO: "web.1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const clients = new Set<http.ServerResponse>();
  let pending = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const parts = (pending + chunk).split("\n");
    pending = parts.pop()!;
    const events = parts.map((l) => `data: app[web.1]: ${l}\n\n`).join("");
    for (const c of clients) c.write(events);
  });
  const relay = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/event-stream" });
    res.flushHeaders();
    clients.add(res);
    req.on("close", () => clients.delete(res));
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  await waitForPort(port);
  return {
    appUrl: `http://127.0.0.1:${port}`,
    streamUrl: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/`,
    stop: () => {
      child.kill("SIGKILL");
      for (const c of clients) c.destroy();
      relay.close();
    },
  };
}
