import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { localDispatcher } from "../../src/bench/sample-app.ts";
import { canReach, movedServiceDir, postgresUser } from "../../src/local/postgres-server.ts";
import { ROOT } from "../../src/local/worker.ts";
import { freePort } from "../../src/node/ports.ts";
import { gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { waitFor } from "../support/slugs.ts";

// A newcomer's first minutes, as the README tells them: a fresh clone kept where only its
// owner can look (as root's 0700 home is), `npm start`, `source .dynoplane/env`, `heroku
// apps:create`, the welcome page, `git push heroku main`. The platform's database servers
// run as the postgres user, which cannot reach into such a directory.

/** The `export NAME=value` lines of the env file npm start writes. */
function readEnvFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, "utf8")
      .split("\n")
      .map((l) => /^export (\w+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m)
      .map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, "$1")]),
  );
}

describe.skipIf(sandboxProblems().length > 0)("a newcomer's first minutes, from a clone in a private directory", () => {
  let parent: string;
  let clone: string;
  let child: ChildProcess;
  let output = "";
  let port: number;
  let env: Record<string, string>;
  let cliHome: string;
  const app = `newcomer-${process.pid}`;

  beforeAll(async () => {
    // Beside this checkout's node_modules, so `npm install` can be hard links to what it installed.
    mkdirSync(path.join(ROOT, ".dynoplane"), { recursive: true });
    parent = mkdtempSync(path.join(ROOT, ".dynoplane", "newcomer-"));
    chmodSync(parent, 0o700);
    clone = path.join(parent, "dynoplane");
    execFileSync("git", ["clone", "--quiet", ROOT, clone]);
    execFileSync("cp", ["-al", path.join(ROOT, "node_modules"), path.join(clone, "node_modules")]);
    port = await freePort();
    const own: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(DYNOPLANE_|HEROKU_|NODE_ENV$)/.test(k)) own[k] = v;
    child = spawn("npm", ["start"], { cwd: clone, env: { ...own, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"], detached: true });
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    await waitFor("npm start's platform", () => output.includes("Press Ctrl-C to stop.") || child.exitCode !== null, 240_000, 250);
    if (child.exitCode !== null) throw new Error(`npm start ended (exit ${child.exitCode}):\n${output}`);
    env = readEnvFile(path.join(clone, ".dynoplane", "env"));
    cliHome = makeCliHome();
  }, 360_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      process.kill(-child.pid!, "SIGINT"); // npm and the platform under it, as Ctrl-C would
      await exited;
    }
    if (parent) rmSync(parent, { recursive: true, force: true });
    // The databases that moved out of the private checkout go with it.
    if (clone) rmSync(movedServiceDir(path.join(clone, ".dynoplane")), { recursive: true, force: true });
  }, 120_000);

  it("starts where the postgres user cannot look, keeping the databases where it can", () => {
    const user = postgresUser();
    if (user) {
      expect(canReach(clone, user)).toBe(false);
      expect(output).toContain("the databases live in /var/lib/dynoplane-postgres/homes/");
    }
    expect(output).toContain(`dynoplane is running at https://localhost:${port}`);
  });

  it("heroku apps:create answers without a warning, and the app's welcome page answers", async () => {
    const created = await heroku(["apps:create", app], { home: cliHome, env });
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain(`https://${app}.apps.localhost:${port}/`);
    expect(created.stderr).not.toMatch(/warning|terms of service/i);
    const res = await fetch(`https://${app}.apps.localhost:${port}/`, { dispatcher: localDispatcher(env.NODE_EXTRA_CA_CERTS!) });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Welcome to your new app!");
  });

  it("git push heroku main builds and runs the app", async () => {
    const repo = mkdtempSync(path.join(parent, "app-"));
    writeFileSync(path.join(repo, "Procfile"), "web: node server.js\n");
    writeFileSync(path.join(repo, "package.json"), JSON.stringify({ name: "hello", version: "1.0.0" }));
    writeFileSync(path.join(repo, "server.js"), 'require("http").createServer((q, r) => r.end("hello, newcomer")).listen(process.env.PORT);\n');
    const pushEnv = { ...(await gitPushEnv(cliHome, { token: env.HEROKU_API_KEY!, email: "newcomer@example.com" }, { credentialHelper: true })), ...env };
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, env: pushEnv, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    git("init", "--quiet", "--initial-branch", "main");
    git("add", ".");
    git("commit", "--quiet", "-m", "first");
    const remote = await heroku(["git:remote", "-a", app], { home: cliHome, env, cwd: repo });
    expect(remote.code, remote.stderr).toBe(0);
    const result = await spawnOutput("git", ["push", "heroku", "main"], repo, pushEnv);
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain("deployed to dynoplane");
    const dispatcher = localDispatcher(env.NODE_EXTRA_CA_CERTS!);
    const body = await waitFor(
      "the app answering",
      async () => {
        const res = await fetch(`https://${app}.apps.localhost:${port}/`, { dispatcher }).catch(() => null);
        const text = res ? await res.text() : "";
        return res?.status === 200 && text === "hello, newcomer" ? text : false;
      },
      60_000,
      500,
    );
    expect(body).toBe("hello, newcomer");
  });
});

/** Runs a command to its end, collecting stdout and stderr together. */
function spawnOutput(cmd: string, args: string[], cwd: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    c.stdout!.on("data", (d) => (output += d));
    c.stderr!.on("data", (d) => (output += d));
    c.once("close", (code) => resolve({ code, output }));
  });
}
