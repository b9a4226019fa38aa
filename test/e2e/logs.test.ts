import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { cliEnv, ensureHerokuCli, heroku, makeCliHome, stripAnsi, type CliResult } from "../support/heroku-cli.ts";
import { askLogApp, lineText, logSessionUrl, makeLogApp, readSse, type SseEvent, wholeLog } from "../support/log-app.ts";

// A real dyno prints lines; the unmodified heroku CLI reads them back through log sessions
// (Server-Sent Events), with history, filters and --tail, next to router lines and app[api]
// events; and a stream cut mid-way resumes with Last-Event-ID without losing or repeating a line.

function expectOk(res: CliResult) {
  if (res.code !== 0) throw new Error(`exit ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}
const outputLines = (res: CliResult) =>
  stripAnsi(res.stdout)
    .split("\n")
    .filter((l) => l.trim() !== "");

/** The whole log (up to 1,500 lines) as formatted lines, read directly. */

/** Waits until the log holds a line whose text satisfies `match`. */
async function waitForLine(token: string, app: string, match: (text: string) => boolean, timeoutMs = 20_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await wholeLog(token, app);
    if (log.some((l) => match(lineText(l)))) return log;
    if (Date.now() > deadline) throw new Error(`no such line in the log:\n${log.slice(-30).join("\n")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

afterAll(closeDb);
beforeAll(async () => {
  await ensureHerokuCli();
}, 600_000);

describe("heroku logs against a running dyno", { timeout: 120_000 }, () => {
  let owner: TestAccount;
  let home: string;
  let app: Awaited<ReturnType<typeof makeLogApp>>;
  const cli = async (args: string[]) => {
    const res = await heroku([...args, "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expectOk(res);
    return res;
  };

  beforeAll(async () => {
    owner = await makeAccount();
    home = makeCliHome();
    app = await makeLogApp(owner);
    await askLogApp(app.url("/print?n=120&prefix=hello"));
    await waitForLine(owner.token, app.name, (t) => t === "hello 120");
    // A request that prints nothing: its router line comes after the output above.
    await askLogApp(app.url("/?after=hello"));
    await waitForLine(owner.token, app.name, (t) => t.includes('path="/?after=hello"'));
  }, 120_000);
  afterAll(async () => {
    if (app) await api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
  });

  it("heroku logs -n 50 prints exactly the last 50 lines", async () => {
    const log = await wholeLog(owner.token, app.name);
    const res = await cli(["logs", "-n", "50"]);
    expect(outputLines(res)).toEqual(log.slice(-50));
    expect(outputLines(res).at(-1)).toMatch(/^\S+ heroku\[router\]: at=info method=GET path="\/\?after=hello" host=\S+ .*dyno=web\.1 .*status=200/);
    expect(outputLines(res)).toContain(log.find((l) => l.endsWith("app[web.1]: hello 120")));
  });

  it("--dyno web.1, --ps web and --source app filter as Heroku does", async () => {
    const log = await wholeLog(owner.token, app.name);
    const web1 = log.filter((l) => / (app|heroku)\[web\.1\]: /.test(l));
    expect(web1.length).toBeGreaterThan(120);
    expect(outputLines(await cli(["logs", "--dyno", "web.1", "-n", "30"]))).toEqual(web1.slice(-30));
    expect(outputLines(await cli(["logs", "--ps", "web", "-n", "30"]))).toEqual(log.filter((l) => / (app|heroku)\[web\.\d+\]: /.test(l)).slice(-30));
    const appSource = log.filter((l) => / app\[[^\]]+\]: /.test(l));
    const fromApp = outputLines(await cli(["logs", "--source", "app", "-n", "200"]));
    expect(fromApp).toEqual(appSource.slice(-200));
    expect(fromApp.some((l) => l.includes("app[api]: Release v2 created by user"))).toBe(true);
    expect(fromApp.every((l) => !l.includes(" heroku["))).toBe(true);
    const router = outputLines(await cli(["logs", "--source", "heroku", "--dyno", "router"]));
    expect(router.length).toBeGreaterThan(0);
    expect(router.every((l) => l.includes(" heroku[router]: at="))).toBe(true);
  });

  it("heroku logs --tail shows a line printed after it started", async () => {
    const log = await wholeLog(owner.token, app.name);
    const child = spawn(process.execPath, [await ensureHerokuCli(), "logs", "--tail", "-n", "5", "-a", app.name], {
      env: cliEnv(home, { HEROKU_API_KEY: owner.token }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (out += d));
    const seen = async (needle: string) => {
      const deadline = Date.now() + 20_000;
      while (!stripAnsi(out).includes(needle)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no "${needle}" in the tail:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await seen(lineText(log.at(-1)!)); // the history arrived: the stream is open
      const mark = `tailmark-${Date.now()}`;
      await askLogApp(app.url(`/print?n=1&prefix=${mark}`));
      await seen(`app[web.1]: ${mark} 1`);
      await seen(`path="/print?n=1&prefix=${mark}"`);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("a stream cut mid-way resumes with Last-Event-ID: every line exactly once", async () => {
    const url = await logSessionUrl(owner.token, app.name, { lines: 0, tail: true, dyno: "web.1", source: "app" });
    const first = await readSse(url);
    await askLogApp(app.url("/paced?n=400&rate=200&prefix=rc"));
    await first.waitFor((e) => lineText(e.data).startsWith("rc 60 "));
    first.abort();
    const lastId = first.events.at(-1)!.id!;
    await new Promise((r) => setTimeout(r, 700)); // lines keep coming while no one listens
    const second = await readSse(url, lastId);
    await second.waitFor((e) => lineText(e.data).startsWith("rc 400 "));
    second.abort();
    const numbers = (events: SseEvent[]) =>
      events
        .map((e) => /^rc (\d+) /.exec(lineText(e.data))?.[1])
        .filter(Boolean)
        .map(Number);
    const all = [...numbers(first.events), ...numbers(second.events)];
    expect(all).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(numbers(second.events)[0]).toBeGreaterThan(60);
  });

  it("a tail that stops reading is skipped with a notice and never holds up appends or other tails", async () => {
    const url = await logSessionUrl(owner.token, app.name, { lines: 0, tail: true, dyno: "web.1", source: "app" });
    const slow = await readSse(url, undefined, { paused: true });
    const fast = await readSse(url);
    // About 30 MB: far more than a subscriber's queue and the sockets on the way can hold.
    await askLogApp(app.url("/print?n=15000&prefix=big&pad=2000"));
    await fast.waitFor((e) => lineText(e.data).startsWith("big 15000 "), 90_000);
    const big = (events: SseEvent[]) => events.filter((e) => lineText(e.data).startsWith("big "));
    expect(big(fast.events)).toHaveLength(15000);
    slow.resume();
    const notice = await slow.waitFor((e) => e.data.includes("heroku[logplex]: Error L11 (Tail buffer overflow)"), 30_000);
    expect(notice.id).toBeNull();
    expect(notice.data).toMatch(/This tail client isn't keeping up with log messages\. \d+ messages dropped since \S+\.$/);
    slow.abort();
    const ids = big(slow.events).map((e) => Number(e.id));
    expect(ids.length).toBeLessThan(15000);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
  });

  it("heroku config:set puts the change and its release in the log", async () => {
    await cli(["config:set", "FOO=bar"]);
    await waitForLine(owner.token, app.name, (t) => t.startsWith("Release v3 created"));
    const res = await cli(["logs", "-n", "300"]);
    const api = outputLines(res).filter((l) => l.includes(" app[api]: "));
    expect(api.slice(-2).map(lineText)).toEqual([`Set FOO config vars by user ${owner.email}`, `Release v3 created by user ${owner.email}`]);
  });
});
