import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { Agent, fetch, request } from "undici";
import { openDb } from "../db/client.ts";
import { dynos, hosts } from "../db/schema/index.ts";
import { APPS_DOMAIN } from "../local/cli-env.ts";
import { freePort } from "../node/ports.ts";
import { startPlatform, type Platform } from "../local/platform.ts";
import { HEARTBEAT_INTERVAL_MS } from "../services/fleet/hosts.ts";
import { benchToken } from "./account.ts";
import { hostWheels, type PackageIndex, startPackageIndex } from "./package-index.ts";

/** How often the app is asked whether the new version answers. */
const POLL_MS = 50;
/** A push that has not answered after this long counts as failed. */
const DEPLOY_TIMEOUT_MS = 120_000;
const FIRST_GOAL_S = 3;
const SECOND_GOAL_S = 2;

/** The app: a Procfile and a server that answers its version string (no package.json, so no npm). */
const serverJs = (version: string) => `const http = require("http");
const VERSION = ${JSON.stringify(version)};
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain" });
  res.end(VERSION);
});
process.on("SIGTERM", () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
server.listen(Number(process.env.PORT));
`;
const PROCFILE = "web: node server.js\n";

/** The Python case: a Flask app served by gunicorn, its packages from a local index. */
const FLASK_DISTRIBUTIONS = ["flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "gunicorn"];
const FLASK_REQUIREMENTS = `${[...FLASK_DISTRIBUTIONS, "setuptools"].join("\n")}\n`;
const appPy = (version: string) => `from flask import Flask

app = Flask(__name__)

@app.route("/")
def index():
    return ${JSON.stringify(version)}, 200, {"Content-Type": "text/plain"}
`;
const FLASK_PROCFILE = "web: gunicorn app:app\n";

/** What one push took, in ms from the start of `git push`. */
interface Timing {
  /** The new version answered through the router (or, for the floor, on its port). */
  answered: number;
  /** `git push` exited. */
  pushed: number;
  /** The push's `-----> Building on`, `-----> Launching...` and `Released vN` lines arrived (NaN when absent). */
  building: number;
  launching: number;
  released: number;
  /** The new web dyno's `Starting process` and `State changed from starting to up` log lines (its host's clock). */
  dynoStarting: number;
  dynoUp: number;
  /** The control plane recorded web.1 up (its row's state_changed_at, set when the host's heartbeat reports it). */
  recordedUp: number;
}

/** The floor for one push: a push to a bare repository on disk, then `node server.js` until it answers. */
interface FloorTiming {
  total: number;
  push: number;
  boot: number;
}

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface DeployBenchOptions {
  rounds: number;
  verbose: boolean;
}

/**
 * Deploy latency on the local platform: seconds from starting `git push` to the new
 * release answering through the router, for a Procfile-only Node app (no dependencies).
 * Each round creates an app, pushes a first commit, then a one-line change, and deletes
 * the app; the app is polled every 50 ms from the start of each push. A new dyno is
 * routed once its host's heartbeat reports it up, and real pushes arrive at any moment
 * of that cycle, so each push starts at a different fraction of the heartbeat interval
 * after a heartbeat (the bench's own steps would otherwise start every push at the same
 * point). The dyno's log lines and the control plane's record of it show where the time
 * goes. The floor, in the same run, pushes the same commits to a bare repository on disk
 * and starts the same `node server.js` by hand until it answers. Goal: first push < 3 s,
 * second < 2 s. Then the Python case (`pythonRounds`).
 */
export async function run(options: DeployBenchOptions): Promise<number> {
  const { rounds, verbose } = options;
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-"));
  chmodSync(home, 0o755);
  let stop: (() => Promise<void>) | undefined;
  let index: PackageIndex | undefined;
  try {
    // The Python case's index: this host's own Flask and gunicorn as wheels, plus the
    // setuptools wheel venv ships (gunicorn imports pkg_resources), in a namespace of its own.
    const setuptools = readdirSync("/usr/share/python-wheels").filter((f) => f.startsWith("setuptools-"))[0];
    if (!setuptools) throw new Error("no setuptools wheel in /usr/share/python-wheels (apt-get install python3-venv)");
    index = await startPackageIndex([...hostWheels(path.join(home, "wheels"), FLASK_DISTRIBUTIONS), path.join("/usr/share/python-wheels", setuptools)]);
    const platform = await startPlatform({
      home,
      quiet: true,
      ephemeral: true,
      workerVars: { RATE_LIMIT_PER_HOUR: "100000000" },
      python: { packages: "index", index: index.url },
    });
    const dispatcher = new Agent({
      connect: { ca: readFileSync(platform.tls.caPath), lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) },
    });
    stop = async () => {
      await dispatcher.close().catch(() => {});
      await platform.stop();
    };
    const token = await benchToken(platform.databaseUrl);
    const api = {
      apiUrl: platform.apiUrl,
      headers: { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      dispatcher,
    };

    const hostId = platform.hostId;
    if (!hostId) throw new Error("the local platform runs no host agent");
    const firsts: Timing[] = [];
    const seconds: Timing[] = [];
    const floorFirsts: FloorTiming[] = [];
    const floorSeconds: FloorTiming[] = [];
    for (let round = 1; round <= rounds; round++) {
      const dir = mkdtempSync(path.join(home, `round-${round}-`));
      const git = gitFor(dir, platform, token);
      const repo = path.join(dir, "app");
      mkdirSync(repo);
      const v1 = `v1 round ${round} ${crypto.randomUUID()}`;
      const v2 = `v2 round ${round} ${crypto.randomUUID()}`;
      git.sync(repo, "init", "-q", "-b", "main");
      commit(git, repo, { Procfile: PROCFILE, "server.js": serverJs(v1) }, "first");

      const app = await createApp(api);
      try {
        const remote = `${platform.apiUrl}/${app.name}.git`;
        const appUrl = `https://${app.name}.${APPS_DOMAIN}:${platform.port}/`;
        const milestones = (since: number) => dynoMilestones(api, platform.databaseUrl, app, since);
        await afterHeartbeat(platform.databaseUrl, hostId, round - 1, rounds);
        const first = await timedPush(git, repo, remote, () => answersWith(appUrl, v1, dispatcher), milestones, verbose);
        firsts.push(first);
        const bare = path.join(dir, "bare.git");
        git.sync(dir, "init", "-q", "--bare", bare);
        floorFirsts.push(await floorPush(git, repo, bare, v1));

        commit(git, repo, { "server.js": serverJs(v2) }, "second");
        await afterHeartbeat(platform.databaseUrl, hostId, round - 0.5, rounds);
        const second = await timedPush(git, repo, remote, () => answersWith(appUrl, v2, dispatcher), milestones, verbose);
        seconds.push(second);
        floorSeconds.push(await floorPush(git, repo, bare, v2));
        console.log(
          `round ${round}: first push ${s(first.answered)} s (git push exited at ${s(first.pushed)} s), second push ${s(second.answered)} s (exited at ${s(second.pushed)} s); floor ${s(floorFirsts.at(-1)!.total)} s / ${s(floorSeconds.at(-1)!.total)} s`,
        );
      } finally {
        await deleteApp(api, app.name).catch((err) => console.error(`could not delete ${app.name}: ${err}`));
        rmSync(dir, { recursive: true, force: true });
      }
    }

    console.log(`\nDeploy latency on the local platform (Procfile-only Node app, ${rounds} rounds, ${os.cpus().length} CPUs, polled every ${POLL_MS} ms)\n`);
    const rows: Array<[string, number[]]> = [
      ["first push: git push -> new version answers", firsts.map((t) => t.answered)],
      ["  git push exited", firsts.map((t) => t.pushed)],
      ["  `-----> Building on` line", firsts.map((t) => t.building)],
      ["  `-----> Launching...` line", firsts.map((t) => t.launching)],
      ["  `Released vN` line", firsts.map((t) => t.released)],
      ["  web dyno `Starting process` (host log)", firsts.map((t) => t.dynoStarting)],
      ["  web dyno `starting to up` (host log)", firsts.map((t) => t.dynoUp)],
      ["  control plane records web.1 up", firsts.map((t) => t.recordedUp)],
      ["second push: git push -> new version answers", seconds.map((t) => t.answered)],
      ["  git push exited", seconds.map((t) => t.pushed)],
      ["  `-----> Building on` line", seconds.map((t) => t.building)],
      ["  `-----> Launching...` line", seconds.map((t) => t.launching)],
      ["  `Released vN` line", seconds.map((t) => t.released)],
      ["  web dyno `Starting process` (host log)", seconds.map((t) => t.dynoStarting)],
      ["  web dyno `starting to up` (host log)", seconds.map((t) => t.dynoUp)],
      ["  control plane records web.1 up", seconds.map((t) => t.recordedUp)],
      ["floor, first: push to a bare repo + node server.js", floorFirsts.map((t) => t.total)],
      ["  git push to the bare repo", floorFirsts.map((t) => t.push)],
      ["  node server.js -> first answer", floorFirsts.map((t) => t.boot)],
      ["floor, second: push to a bare repo + node server.js", floorSeconds.map((t) => t.total)],
      ["  git push to the bare repo", floorSeconds.map((t) => t.push)],
      ["  node server.js -> first answer", floorSeconds.map((t) => t.boot)],
    ];
    printRows(rows);
    const first = median(firsts.map((t) => t.answered));
    const second = median(seconds.map((t) => t.answered));
    const floorFirst = median(floorFirsts.map((t) => t.total));
    const floorSecond = median(floorSeconds.map((t) => t.total));
    console.log(
      `\nfirst push median ${s(first)} s (floor ${s(floorFirst)} s, ${(first / floorFirst).toFixed(1)}x): goal < ${FIRST_GOAL_S} s ${first < FIRST_GOAL_S * 1000 ? "met" : "missed"}`,
    );
    console.log(
      `second push median ${s(second)} s (floor ${s(floorSecond)} s, ${(second / floorSecond).toFixed(1)}x): goal < ${SECOND_GOAL_S} s ${second < SECOND_GOAL_S * 1000 ? "met" : "missed"}`,
    );

    await pythonRounds({ rounds, verbose, home, platform, token, api, index, hostId });
    return 0;
  } finally {
    await stop?.();
    await index?.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * The Python case: a Flask app (gunicorn, `requirements.txt`) pushed twice per round; the
 * second push, with the same requirements, installs from the build cache. The floor, in the
 * same run and from the same index: `python3 -m venv` and `pip install -r requirements.txt`
 * by hand (pip's own cache warm, as the build cache is), then gunicorn until it answers.
 */
async function pythonRounds(o: {
  rounds: number;
  verbose: boolean;
  home: string;
  platform: Platform;
  token: string;
  api: Api;
  index: PackageIndex;
  hostId: string;
}): Promise<void> {
  const { rounds, platform, api } = o;
  const cold: Timing[] = [];
  const warm: Timing[] = [];
  const floors: { venv: number; pip: number; boot: number; total: number }[] = [];
  const pipCache = path.join(o.home, "pip-cache");
  for (let round = 0; round <= rounds; round++) {
    const dir = mkdtempSync(path.join(o.home, `python-${round}-`));
    try {
      const repo = path.join(dir, "app");
      mkdirSync(repo);
      writeFileSync(path.join(repo, "requirements.txt"), FLASK_REQUIREMENTS);
      writeFileSync(path.join(repo, "app.py"), appPy("warm-up"));
      // Round 0 warms pip's cache for the floor, untimed.
      const floor = await pipFloor(repo, o.index, pipCache, round === 0 ? null : `floor ${round}`);
      if (round === 0) continue;
      floors.push(floor);

      const git = gitFor(dir, platform, o.token);
      const v1 = `flask v1 round ${round} ${crypto.randomUUID()}`;
      const v2 = `flask v2 round ${round} ${crypto.randomUUID()}`;
      git.sync(repo, "init", "-q", "-b", "main");
      commit(git, repo, { Procfile: FLASK_PROCFILE, "requirements.txt": FLASK_REQUIREMENTS, "app.py": appPy(v1) }, "first");
      const app = await createApp(api);
      try {
        const remote = `${platform.apiUrl}/${app.name}.git`;
        const appUrl = `https://${app.name}.${APPS_DOMAIN}:${platform.port}/`;
        const milestones = (since: number) => dynoMilestones(api, platform.databaseUrl, app, since);
        await afterHeartbeat(platform.databaseUrl, o.hostId, round - 1, rounds);
        cold.push(await timedPush(git, repo, remote, () => answersWith(appUrl, v1, api.dispatcher), milestones, o.verbose));
        commit(git, repo, { "app.py": appPy(v2) }, "second");
        await afterHeartbeat(platform.databaseUrl, o.hostId, round - 0.5, rounds);
        warm.push(await timedPush(git, repo, remote, () => answersWith(appUrl, v2, api.dispatcher), milestones, o.verbose));
        console.log(
          `python round ${round}: first push ${s(cold.at(-1)!.answered)} s, second push (warm cache) ${s(warm.at(-1)!.answered)} s; by hand: venv ${s(floor.venv)} s + pip install ${s(floor.pip)} s + gunicorn ${s(floor.boot)} s`,
        );
      } finally {
        await deleteApp(api, app.name).catch((err) => console.error(`could not delete ${app.name}: ${err}`));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`\nPython (Flask + gunicorn from a local package index, ${rounds} rounds)\n`);
  const rows: Array<[string, number[]]> = [
    ["first push: git push -> new version answers", cold.map((t) => t.answered)],
    ["  `-----> Launching...` line", cold.map((t) => t.launching)],
    ["second push (warm build cache) -> answers", warm.map((t) => t.answered)],
    ["  `-----> Launching...` line", warm.map((t) => t.launching)],
    ["  web dyno `starting to up` (host log)", warm.map((t) => t.dynoUp)],
    ["by hand: venv + pip install + gunicorn answers", floors.map((f) => f.total)],
    ["  python3 -m venv", floors.map((f) => f.venv)],
    ["  pip install -r requirements.txt (warm pip cache)", floors.map((f) => f.pip)],
    ["  gunicorn -> first answer", floors.map((f) => f.boot)],
  ];
  printRows(rows);
  const pushed = median(warm.map((t) => t.answered));
  const byHand = median(floors.map((f) => f.total));
  const pip = median(floors.map((f) => f.venv + f.pip));
  console.log(
    `\nPython second push median ${s(pushed)} s; by hand ${s(byHand)} s (${(pushed / byHand).toFixed(1)}x), of which venv + pip install ${s(pip)} s (${(pushed / pip).toFixed(1)}x)`,
  );
}

/** The floor of the Python case: a fresh venv, `pip install` from the index, then gunicorn until it answers; times in ms. */
async function pipFloor(
  repo: string,
  index: PackageIndex,
  pipCache: string,
  label: string | null,
): Promise<{ venv: number; pip: number; boot: number; total: number }> {
  const venv = path.join(repo, "..", "venv");
  rmSync(venv, { recursive: true, force: true });
  const env = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", PIP_CACHE_DIR: pipCache, PIP_DISABLE_PIP_VERSION_CHECK: "1", PIP_CONFIG_FILE: "/dev/null" };
  const t0 = performance.now();
  execFileSync("/usr/bin/python3", ["-m", "venv", venv], { env, stdio: "ignore" });
  const t1 = performance.now();
  execFileSync(path.join(venv, "bin", "pip"), ["install", "-q", "--index-url", index.url, "--trusted-host", index.address, "-r", "requirements.txt"], {
    cwd: repo,
    env,
    stdio: "ignore",
  });
  const t2 = performance.now();
  const port = await freePort();
  const child = spawn(path.join(venv, "bin", "gunicorn"), ["--bind", `127.0.0.1:${port}`, "app:app"], { cwd: repo, env, stdio: "ignore" });
  const exited = new Promise((r) => child.once("exit", r));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const polled = performance.now();
      if (await localAnswers(port, "warm-up")) break;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`gunicorn did not answer on ${port}${label ? ` (${label})` : ""}`);
      await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (performance.now() - polled))));
    }
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
  const t3 = performance.now();
  return { venv: t1 - t0, pip: t2 - t1, boot: t3 - t2, total: t3 - t0 };
}

/** git for one round: its environment, a synchronous runner for setup, and a timed runner for pushes. */
interface Git {
  /** Runs git synchronously (setup steps nothing is timed on); throws on failure. */
  sync(cwd: string, ...args: string[]): string;
  /** Runs git, keeping each stderr line with the time it arrived. */
  run(cwd: string, args: string[]): Promise<GitRun>;
}

interface GitRun {
  code: number | null;
  stderr: string;
  lines: Array<[number, string]>;
}

/**
 * git with a throwaway HOME and no system config, trusting the platform's CA and
 * sending the token as Basic auth (`heroku:<token>`), as the heroku CLI's credential
 * helper would.
 */
function gitFor(dir: string, platform: Platform, token: string): Git {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("GIT_")) env[k] = v;
  Object.assign(env, {
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSL_CAINFO: platform.tls.bundlePath,
    GIT_AUTHOR_NAME: "Bench",
    GIT_AUTHOR_EMAIL: "bench@example.com",
    GIT_COMMITTER_NAME: "Bench",
    GIT_COMMITTER_EMAIL: "bench@example.com",
  });
  const config = ["-c", `http.extraHeader=Authorization: Basic ${Buffer.from(`heroku:${token}`).toString("base64")}`];
  return {
    sync: (cwd, ...args) => execFileSync("git", [...config, ...args], { cwd, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
    run: (cwd, args) =>
      new Promise((resolve, reject) => {
        const child = spawn("git", [...config, ...args], { cwd, env, stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        let pending = "";
        const lines: Array<[number, string]> = [];
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
          const at = performance.now();
          stderr += chunk;
          // git rewrites progress in place with \r; each piece counts as a line.
          const parts = (pending + chunk).split(/\r|\n/);
          pending = parts.pop()!;
          for (const p of parts) if (p.trim()) lines.push([at, p]);
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), DEPLOY_TIMEOUT_MS);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          if (pending.trim()) lines.push([performance.now(), pending]);
          resolve({ code, stderr, lines });
        });
      }),
  };
}

/** Writes files into the working tree and commits them. */
function commit(git: Git, repo: string, files: Record<string, string>, message: string): void {
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(repo, name), body);
  git.sync(repo, "add", "-A");
  git.sync(repo, "commit", "-q", "-m", message);
}

/**
 * `git push <remote> main` from `repo`, polling `answered` every 50 ms from the moment
 * the push starts; resolves with the times (ms from the start) of the push's milestones
 * and of the first poll that saw the new version.
 */
async function timedPush(
  git: Git,
  repo: string,
  remote: string,
  answered: () => Promise<boolean>,
  dynoMilestones: (since: number) => Promise<DynoMilestones>,
  verbose: boolean,
): Promise<Timing> {
  const startedAt = Date.now();
  const started = performance.now();
  const push = git.run(repo, ["push", remote, "main"]);
  let pushedAt = NaN;
  let result: GitRun | undefined;
  void push.then(
    (r) => ((pushedAt = performance.now() - started), (result = r)),
    () => {},
  );
  let answeredAt = NaN;
  const deadline = started + DEPLOY_TIMEOUT_MS;
  for (;;) {
    const polled = performance.now();
    if (await answered()) {
      answeredAt = performance.now() - started;
      break;
    }
    if (result && result.code !== 0) throw new Error(`git push failed: exit ${result.code}\n${result.stderr}`);
    if (performance.now() > deadline) throw new Error(`the new version did not answer within ${DEPLOY_TIMEOUT_MS} ms\n${result?.stderr ?? ""}`);
    await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (performance.now() - polled))));
  }
  const r = await push;
  if (r.code !== 0) throw new Error(`git push failed: exit ${r.code}\n${r.stderr}`);
  const at = (re: RegExp) => {
    const line = r.lines.find(([, l]) => re.test(l));
    return line ? line[0] - started : NaN;
  };
  const dyno = await dynoMilestones(startedAt);
  if (verbose) {
    for (const [t, l] of r.lines) console.log(`  ${((t - started) / 1000).toFixed(3).padStart(7)}  ${l}`);
    const events: Array<[number, string]> = [
      [pushedAt, "(git push exited)"],
      [dyno.starting - startedAt, "(web dyno: Starting process)"],
      [dyno.up - startedAt, "(web dyno: State changed from starting to up)"],
      [dyno.recordedUp - startedAt, "(the control plane recorded web.1 up)"],
      [answeredAt, "(the new version answered through the router)"],
    ];
    for (const [t, l] of events.sort((a, b) => a[0] - b[0])) console.log(`  ${(t / 1000).toFixed(3).padStart(7)}  ${l}`);
  }
  return {
    answered: answeredAt,
    pushed: pushedAt,
    building: at(/^remote: -----> Building on/),
    launching: at(/^remote: -----> Launching/),
    released: at(/^remote: +Released v\d+/),
    dynoStarting: dyno.starting - startedAt,
    dynoUp: dyno.up - startedAt,
    recordedUp: dyno.recordedUp - startedAt,
  };
}

interface DynoMilestones {
  /** Epoch ms of web.1's first `Starting process` line at or after the push, then its `starting to up` line (NaN when none arrived). */
  starting: number;
  up: number;
  /** Epoch ms at which the control plane recorded web.1 up after the push (NaN when it did not in time). */
  recordedUp: number;
}

/**
 * When the new web.1 started and came up, as its host logged it (the app's platform log
 * lines), and when the control plane recorded it up (its row's state_changed_at, written
 * when a heartbeat reports the change): what happened where, beside what the router saw.
 * Lines are shipped in batches and heartbeats come every few seconds, so this retries.
 */
async function dynoMilestones(api: Api, databaseUrl: string, app: { id: string; name: string }, since: number): Promise<DynoMilestones> {
  const deadline = Date.now() + HEARTBEAT_INTERVAL_MS + 3_000;
  const handle = await openDb(databaseUrl);
  try {
    for (;;) {
      const found: DynoMilestones = { starting: NaN, up: NaN, recordedUp: NaN };
      const [row] = await handle.db
        .select({ state: dynos.state, at: dynos.stateChangedAt })
        .from(dynos)
        .where(and(eq(dynos.appId, app.id), eq(dynos.name, "web.1")));
      if (row?.state === "up" && row.at.getTime() >= since) found.recordedUp = row.at.getTime();
      const session = await fetch(`${api.apiUrl}/apps/${app.name}/log-sessions`, {
        method: "POST",
        headers: api.headers,
        body: JSON.stringify({ lines: 100, source: "heroku", dyno: "web.1" }),
        dispatcher: api.dispatcher,
      });
      if (session.status !== 201) throw new Error(`POST /apps/${app.name}/log-sessions: ${session.status} ${await session.text()}`);
      const url = ((await session.json()) as { logplex_url: string }).logplex_url;
      const text = await (await fetch(url, { dispatcher: api.dispatcher })).text();
      for (const raw of text.split("\n")) {
        const line = raw.startsWith("data: ") ? raw.slice(6) : raw;
        const at = Date.parse(line.slice(0, line.indexOf(" ")));
        if (!(at >= since)) continue;
        if (Number.isNaN(found.starting) && line.includes("Starting process with command")) found.starting = at;
        else if (!Number.isNaN(found.starting) && Number.isNaN(found.up) && line.endsWith("State changed from starting to up")) found.up = at;
      }
      if ((!Number.isNaN(found.up) && !Number.isNaN(found.recordedUp)) || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await handle.close();
  }
}

/**
 * Waits for the host's next heartbeat (its `last_heartbeat_at` moving), then for
 * `slot / slots` of the heartbeat interval, so pushes sample the whole cycle.
 */
async function afterHeartbeat(databaseUrl: string, hostId: string, slot: number, slots: number): Promise<void> {
  const handle = await openDb(databaseUrl);
  try {
    const last = async () => (await handle.db.select({ at: hosts.lastHeartbeatAt }).from(hosts).where(eq(hosts.id, hostId)))[0]?.at?.getTime() ?? 0;
    const before = await last();
    const deadline = Date.now() + 3 * HEARTBEAT_INTERVAL_MS;
    while ((await last()) === before) {
      if (Date.now() > deadline) throw new Error(`host ${hostId} has not sent a heartbeat in ${3 * HEARTBEAT_INTERVAL_MS} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await handle.close();
  }
  await new Promise((r) => setTimeout(r, (slot / slots) * HEARTBEAT_INTERVAL_MS));
}

/** Whether a GET through the router answers 200 with exactly `version`. */
async function answersWith(url: string, version: string, dispatcher: Agent): Promise<boolean> {
  try {
    const res = await request(url, { dispatcher, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const body = await res.body.text();
    return res.statusCode === 200 && body === version;
  } catch {
    return false;
  }
}

/**
 * The floor for one push: `git push` of `repo`'s main to a bare repository over its
 * path, then `node server.js` from the working tree with a fresh PORT until a GET
 * returns `version`, polled as the platform's app is.
 */
async function floorPush(git: Git, repo: string, bare: string, version: string): Promise<FloorTiming> {
  const started = performance.now();
  const push = await git.run(repo, ["push", "-q", bare, "main"]);
  if (push.code !== 0) throw new Error(`git push to ${bare}: exit ${push.code}\n${push.stderr}`);
  const pushed = performance.now();
  const port = await freePort();
  const child = spawn("node", ["server.js"], { cwd: repo, env: { PATH: process.env.PATH, PORT: String(port) }, stdio: "ignore" });
  const exited = new Promise((r) => child.once("exit", r));
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const polled = performance.now();
      if (await localAnswers(port, version)) {
        const now = performance.now();
        return { total: now - started, push: pushed - started, boot: now - pushed };
      }
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`node server.js did not answer on ${port}`);
      await new Promise((r) => setTimeout(r, Math.max(0, POLL_MS - (performance.now() - polled))));
    }
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Whether a plain GET to 127.0.0.1:port answers 200 with exactly `version`. */
function localAnswers(port: number, version: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d) => (body += d));
      res.on("end", () => resolve(res.statusCode === 200 && body === version));
      res.on("error", () => resolve(false));
    });
    req.once("error", () => resolve(false));
  });
}

interface Api {
  apiUrl: string;
  headers: Record<string, string>;
  dispatcher: Agent;
}

/** Creates an app with a generated name. */
async function createApp(api: Api): Promise<{ id: string; name: string }> {
  const res = await fetch(`${api.apiUrl}/apps`, { method: "POST", headers: api.headers, body: "{}", dispatcher: api.dispatcher });
  const json = (await res.json()) as { id?: string; name?: string };
  if (res.status !== 201 || !json.name || !json.id) throw new Error(`POST /apps: ${res.status} ${JSON.stringify(json)}`);
  return { id: json.id, name: json.name };
}

/** Deletes an app (its dynos stop). */
async function deleteApp(api: Api, app: string): Promise<void> {
  const res = await fetch(`${api.apiUrl}/apps/${app}`, { method: "DELETE", headers: api.headers, dispatcher: api.dispatcher });
  await res.body?.cancel();
  if (res.status !== 200) throw new Error(`DELETE /apps/${app}: ${res.status}`);
}

const s = (ms: number) => (ms / 1000).toFixed(2);

/** One line per row: its label, each round's seconds and their median. */
function printRows(rows: Array<[string, number[]]>): void {
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, xs] of rows) console.log(`${(label + ":").padEnd(width + 1)} ${xs.map((t) => s(t).padStart(6)).join(" ")} s; median ${s(median(xs))} s`);
}

const median = (xs: number[]) => {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
