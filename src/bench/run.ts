import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureHerokuCli } from "../local/heroku-cli.ts";
import { median, printTimings } from "./timings.ts";
import { startPlatform } from "../local/platform.ts";
import { deploySampleApp } from "./sample-app.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface RunBenchOptions {
  rounds: number;
}

interface Timed {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `heroku run -x 'echo ok'` on the local platform with the stock CLI, timed from spawning
 * the CLI to its exit with `ok` printed: the dyno is created, placed and started, the CLI
 * connects to the host's rendezvous server over TLS, the command runs in a fresh sandbox,
 * and its exit status comes back. Beside it, in the same rounds: `sh -c 'echo ok'` (the
 * floor: a bare process), `heroku --version` (the CLI starting, no request), and `heroku ps`
 * (the CLI's start-up and its API calls, which every `heroku run` pays too). Goal:
 * `heroku run` beyond `heroku ps` under 0.5 s at the median.
 */
export async function run(options: RunBenchOptions): Promise<number> {
  const { rounds } = options;
  const bin = await ensureHerokuCli();
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
    const cliHome = path.join(home, "cli");
    mkdirSync(cliHome);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: cliHome,
      XDG_CACHE_HOME: path.join(cliHome, ".cache"),
      XDG_CONFIG_HOME: path.join(cliHome, ".config"),
      XDG_DATA_HOME: path.join(cliHome, ".local", "share"),
      HEROKU_SKIP_ANALYTICS: "1",
      NO_COLOR: "1",
      ...platform.cliEnv,
      HEROKU_API_KEY: sample.token,
    };
    const heroku = (args: string[]) => timed(process.execPath, [bin, ...args, "--app", sample.app], env);
    const check = (what: string, r: Timed, ok: (r: Timed) => boolean) => {
      if (!ok(r)) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
      return r.ms;
    };
    // One of each first: the CLI's own caches, the slug's unpack on the host.
    check("heroku run", await heroku(["run", "-x", "echo ok"]), (r) => r.code === 0 && r.stdout.trim() === "ok");
    check("heroku ps", await heroku(["ps"]), (r) => r.code === 0);

    const bare: number[] = [];
    const version: number[] = [];
    const ps: number[] = [];
    const runs: number[] = [];
    for (let i = 1; i <= rounds; i++) {
      bare.push(check("sh -c", await timed("/bin/sh", ["-c", "echo ok"], env), (r) => r.code === 0 && r.stdout === "ok\n"));
      version.push(check("heroku --version", await timed(process.execPath, [bin, "--version"], env), (r) => r.code === 0 && r.stdout.includes("heroku/")));
      ps.push(check("heroku ps", await heroku(["ps"]), (r) => r.code === 0 && r.stdout.includes("web.1")));
      runs.push(check("heroku run", await heroku(["run", "-x", "echo ok"]), (r) => r.code === 0 && r.stdout.trim() === "ok"));
      console.log(
        `round ${i}: heroku run ${runs.at(-1)!.toFixed(0)} ms, heroku ps ${ps.at(-1)!.toFixed(0)} ms, heroku --version ${version.at(-1)!.toFixed(0)} ms, sh -c ${bare.at(-1)!.toFixed(1)} ms`,
      );
    }

    console.log(`\nheroku run -x 'echo ok' on the local platform (${rounds} rounds, ${os.cpus().length} CPUs)\n`);
    const rows: Array<[string, number[]]> = [
      ["heroku run -x 'echo ok' (spawn -> ok printed and exit 0)", runs],
      ["heroku ps (the CLI's start-up and its API calls)", ps],
      ["heroku --version (the CLI's start-up alone)", version],
      ["sh -c 'echo ok' (a bare process)", bare],
    ];
    printTimings(rows);
    const overhead = median(runs) - median(ps);
    console.log(
      `\nheroku run median ${median(runs).toFixed(0)} ms = ${(median(runs) / median(ps)).toFixed(2)}x heroku ps, ${(median(runs) / median(version)).toFixed(2)}x heroku --version, ${(median(runs) / median(bare)).toFixed(0)}x sh -c`,
    );
    console.log(`overhead beyond the CLI's own start-up: ${overhead.toFixed(0)} ms (goal under 500 ms): goal ${overhead < 500 ? "met" : "missed"}`);
    return 0;
  } finally {
    await platform.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Runs a command to its exit; milliseconds from spawn to exit, with its output. */
function timed(cmd: string, args: string[], env: Record<string, string>): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ ms: performance.now() - started, code, stdout, stderr });
    });
  });
}
