import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { deploySampleApp, dynoStates, type SampleApp } from "../../src/bench/sample-app.ts";
import type { Platform } from "../../src/local/platform.ts";
import { localDatabaseUrl } from "../../src/local/running.ts";
import { ROOT } from "../../src/local/worker.ts";
import { freePort } from "../../src/node/ports.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { waitFor } from "../support/slugs.ts";

// `npm start` alone fires the Worker's cron: nothing here calls the scheduled handler. An
// operator lowers the idle time and the schedule through the environment, as the README
// says, and an eco app goes to sleep by itself.

describe.skipIf(sandboxProblems().length > 0)("the cron of npm start's own platform", () => {
  let home: string;
  let child: ChildProcess;
  let output = "";
  let port: number;
  let sample: SampleApp;

  beforeAll(async () => {
    await ensureHerokuCli();
    home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-cron-"));
    chmodSync(home, 0o755);
    port = await freePort();
    child = spawn(process.execPath, [path.join(ROOT, "bin", "dynoplane.js"), "start", "--port", String(port)], {
      cwd: ROOT,
      env: { ...process.env, DYNOPLANE_HOME: home, ECO_IDLE_MINUTES: "0.25", DYNOPLANE_CRON: "*/5 * * * * *", DYNOPLANE_PYTHON_PACKAGES: "host" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    await waitFor("npm start's platform", () => output.includes("Press Ctrl-C to stop."), 240_000, 250);
    const platform = {
      apiUrl: `https://localhost:${port}`,
      port,
      tls: { caPath: path.join(home, "tls", "ca.pem") },
      databaseUrl: await localDatabaseUrl(home),
    } as Platform;
    sample = await deploySampleApp(platform);
  }, 360_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      await exited;
    }
    if (home) rmSync(home, { recursive: true, force: true });
  }, 120_000);

  it("puts an idle eco app to sleep on its schedule, and heroku ps shows it", async () => {
    expect(await dynoStates(`https://localhost:${port}`, sample)).toEqual(["up"]);
    // Idle for 15 s, then the next scheduled run (every 5 s: croner's seconds field) puts it to sleep.
    await waitFor("web.1 asleep", async () => (await dynoStates(`https://localhost:${port}`, sample)).join() === "idle", 120_000, 1_000);
    const cliHome = makeCliHome();
    const cliEnv = Object.fromEntries(
      readFileSync(path.join(home, "env"), "utf8")
        .split("\n")
        .map((l) => /^export (\w+)=(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, "$1")]),
    );
    const ps = await heroku(["ps", "--app", sample.app], { home: cliHome, env: { ...cliEnv, HEROKU_API_KEY: sample.token } });
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toMatch(/web\.1: idle /);
    expect(ps.stdout).toMatch(/Eco dyno usage for this app: 0h \dm/);
    const logs = await heroku(["logs", "--app", sample.app, "-n", "100"], { home: cliHome, env: { ...cliEnv, HEROKU_API_KEY: sample.token } });
    expect(logs.stdout).toContain("heroku[web.1]: Idling");
    await waitFor(
      "the stop in the log",
      async () => {
        const again = await heroku(["logs", "--app", sample.app, "-n", "100"], { home: cliHome, env: { ...cliEnv, HEROKU_API_KEY: sample.token } });
        return again.stdout.includes("heroku[web.1]: State changed from up to down");
      },
      60_000,
      2_000,
    );
  }, 300_000);
});
