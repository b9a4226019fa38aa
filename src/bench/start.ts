import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { Agent, request } from "undici";
import { ensureLocalTls } from "../local/tls.ts";
import { ROOT } from "../local/worker.ts";
import { httpsSocket } from "../local/workerd-config.ts";
import { freePort } from "../node/ports.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface StartBenchOptions {
  rounds: number;
}

/** Seconds from spawning a command until `https://localhost:port/health` answers 200, and until it says it is ready. */
interface Started {
  answerS: number;
  readyS: number;
  stop(): Promise<void>;
}

async function answers(port: number, caPath: string): Promise<boolean> {
  // The CA is made during the start: until then nothing can answer anyway.
  if (!existsSync(caPath)) return false;
  const dispatcher = new Agent({ connect: { ca: readFileSync(caPath), servername: "localhost" } });
  try {
    const res = await request(`https://127.0.0.1:${port}/health`, { dispatcher, headersTimeout: 2_000 });
    await res.body.text();
    return res.statusCode === 200;
  } catch {
    return false;
  } finally {
    await dispatcher.close();
  }
}

/**
 * Spawns `command`, polls its health route every 20 ms, and waits for `readyLine` in its
 * output (or, without one, the first answer).
 */
async function timeStart(command: string, args: string[], env: NodeJS.ProcessEnv, port: number, caPath: string, readyLine?: string): Promise<Started> {
  const started = performance.now();
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  let readyAt = 0;
  const onData = (d: Buffer) => {
    output += d.toString();
    if (readyLine && !readyAt && output.includes(readyLine)) readyAt = performance.now();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGINT");
    const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 60_000);
    await exited;
    clearTimeout(timer);
  };
  let answeredAt = 0;
  const deadline = started + 180_000;
  while (!answeredAt || (readyLine && !readyAt)) {
    if (child.exitCode !== null) throw new Error(`${path.basename(command)} exited during start-up:\n${output}`);
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`no answer within 180 s:\n${output}`);
    }
    if (!answeredAt && (await answers(port, caPath))) answeredAt = performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
  return { answerS: (answeredAt - started) / 1000, readyS: ((readyAt || answeredAt) - started) / 1000, stop };
}

/** The floor: workerd itself serving a Worker that answers `{"status":"ok"}` over HTTPS. */
async function bareWorkerd(home: string): Promise<Started> {
  const tls = await ensureLocalTls(path.join(home, "tls"), ["localhost", "127.0.0.1"]);
  const { serializeConfig } = await import("miniflare");
  const port = await freePort();
  const config = serializeConfig({
    services: [
      {
        name: "ok",
        worker: { modules: [{ name: "ok.js", esModule: "export default { fetch: () => Response.json({ status: 'ok' }) };" }], compatibilityDate: "2026-04-01" },
      },
    ],
    sockets: [httpsSocket(`127.0.0.1:${port}`, "ok", { certificateChain: readFileSync(tls.certPath, "utf8"), privateKey: readFileSync(tls.keyPath, "utf8") })],
  });
  const configPath = path.join(home, "bare.capnp.bin");
  writeFileSync(configPath, config);
  const workerd: string = createRequire(import.meta.url)("workerd").default;
  return timeStart(workerd, ["serve", "--binary", configPath], process.env, port, tls.caPath);
}

/**
 * `npm run bench:start`: seconds from `npm start` (here `node bin/dynoplane.js start`, what
 * it runs) to the API's first answer and to "ready" (the host agent up, the env file
 * written): on a fresh home (a new database cluster, certificates, migrations, the first
 * account) and on a second start of the same home; beside the floor, workerd serving a
 * trivial Worker. Goal: under 10 s fresh, under 5 s warm.
 */
export async function run(options: StartBenchOptions): Promise<number> {
  const rows: string[] = [];
  const figures: { fresh: number[]; warm: number[]; floor: number[] } = { fresh: [], warm: [], floor: [] };
  for (let round = 0; round < options.rounds; round++) {
    const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-start-"));
    chmodSync(home, 0o755);
    try {
      const floor = await bareWorkerd(path.join(home, "bare"));
      await floor.stop();
      figures.floor.push(floor.answerS);
      const port = await freePort();
      const env = { ...process.env, DYNOPLANE_HOME: path.join(home, "platform"), PORT: String(port) };
      const args = [path.join(ROOT, "bin", "dynoplane.js"), "start"];
      const caPath = path.join(home, "platform", "tls", "ca.pem");
      const fresh = await timeStart(process.execPath, args, env, port, caPath, "Press Ctrl-C to stop.");
      await fresh.stop();
      const warm = await timeStart(process.execPath, args, env, port, caPath, "Press Ctrl-C to stop.");
      await warm.stop();
      figures.fresh.push(fresh.answerS);
      figures.warm.push(warm.answerS);
      rows.push(
        `  round ${round + 1}: fresh ${fresh.answerS.toFixed(2)} s to the API (${fresh.readyS.toFixed(2)} s to ready), ` +
          `second start ${warm.answerS.toFixed(2)} s (${warm.readyS.toFixed(2)} s), bare workerd ${floor.answerS.toFixed(2)} s`,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const [fresh, warm, floor] = [median(figures.fresh), median(figures.warm), median(figures.floor)];
  console.log(`\nnpm start, from the command to the API's first answer (${options.rounds} rounds, ${os.cpus().length} CPUs)\n`);
  console.log(rows.join("\n"));
  console.log(`\nmedian: fresh home ${fresh.toFixed(2)} s (goal < 10 s: ${fresh < 10 ? "met" : "missed"}; ${(fresh / floor).toFixed(1)}x bare workerd)`);
  console.log(`median: second start ${warm.toFixed(2)} s (goal < 5 s: ${warm < 5 ? "met" : "missed"}; ${(warm / floor).toFixed(1)}x bare workerd)`);
  console.log(`median: bare workerd with a trivial Worker ${floor.toFixed(2)} s (the floor)`);
  return 0;
}
