import { readdirSync, readFileSync } from "node:fs";
import https from "node:https";
import tls from "node:tls";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLogplexBody } from "../../src/logs/logplex.ts";
import { agentWorkDir } from "../../src/local/host.ts";
import { api, platform } from "../support/api.ts";
import { closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { askLogApp, lineText, logSessionUrl, makeLogApp, readSse } from "../support/log-app.ts";

// Lines leave the platform too: to HTTPS drains in Heroku's logplex framing, through an
// outage of the receiver; and a dyno that floods its output neither stalls the API nor
// grows the agent, which drops lines and says so in the log.

/** A local HTTPS drain receiver on the port the platform allows (DRAIN_ALLOW_HOSTS), with the platform's certificate. */
class Receiver {
  messages: string[] = [];
  requests: Array<{ headers: Record<string, string | string[] | undefined>; count: number }> = [];
  private server?: https.Server;

  async up(): Promise<void> {
    const tls = path.join(platform().home, "tls");
    this.server = https.createServer({ cert: readFileSync(path.join(tls, "server.pem")), key: readFileSync(path.join(tls, "server.key")) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const frames = parseLogplexBody(Buffer.concat(chunks));
        this.requests.push({ headers: req.headers, count: frames.length });
        this.messages.push(...frames);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(platform().drainPort, "127.0.0.1", resolve));
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }

  /** Messages whose text (after `- `) starts with `prefix `, as numbers. */
  numbered(prefix: string): number[] {
    return this.messages
      .map((m) => new RegExp(`^<190>1 \\S+ host app web\\.1 - ${prefix} (\\d+)$`).exec(m)?.[1])
      .filter(Boolean)
      .map(Number);
  }

  async waitFor(what: string, check: () => boolean, timeoutMs = 45_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`the receiver never got ${what}; last messages:\n${this.messages.slice(-10).join("\n")}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the app's newest web.1 output line is `text`. */
async function waitForLast(token: string, app: string, text: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reader = await readSse(await logSessionUrl(token, app, { lines: 1, dyno: "web.1", source: "app" }));
    await reader.ended;
    if (reader.events.some((e) => lineText(e.data) === text)) return;
    if (Date.now() > deadline) throw new Error(`"${text}" never reached the log`);
    await sleep(200);
  }
}

afterAll(closeDb);
beforeAll(async () => {
  await ensureHerokuCli();
}, 600_000);

describe("log drains and floods", { timeout: 240_000 }, () => {
  let owner: TestAccount;
  const apps: string[] = [];
  beforeAll(async () => {
    owner = await makeAccount();
  });
  afterAll(async () => {
    for (const app of apps) await api(`/apps/${app}`, { method: "DELETE", token: owner.token });
  });

  it("forwards every line to an HTTPS drain, through a receiver outage, and counts what it had to drop", async () => {
    const app = await makeLogApp(owner);
    apps.push(app.name);
    const home = makeCliHome();
    const drainUrl = `https://127.0.0.1:${platform().drainPort}/drain`;
    const refused = await heroku(["drains:add", "https://127.0.0.1:9/drain", "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expect(refused.code).not.toBe(0);
    const added = await heroku(["drains:add", drainUrl, "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expect(added.stdout, added.stderr).toContain(`Successfully added drain ${drainUrl}`);
    const [drain] = (await api(`/apps/${app.name}/log-drains`, { token: owner.token })).body;

    const receiver = new Receiver();
    await receiver.up();
    try {
      await askLogApp(app.url("/print?n=20&prefix=d1"));
      await receiver.waitFor("d1 1..20", () => receiver.numbered("d1").length === 20);
      expect(receiver.numbered("d1")).toEqual(range(1, 20));
      const request = receiver.requests[0]!;
      expect(request.headers["content-type"]).toBe("application/logplex-1");
      expect(request.headers["logplex-drain-token"]).toBe(drain.token);
      expect(request.headers["logplex-frame-id"]).toMatch(/^[0-9A-F]{32}$/);
      expect(receiver.requests.every((r) => Number(r.headers["logplex-msg-count"]) === r.count)).toBe(true);
      expect(receiver.messages.some((m) => / host heroku router - at=info method=GET path="\/print\?n=20&prefix=d1"/.test(m))).toBe(true);

      // Down for a while: the lines arrive once it is back.
      await receiver.down();
      await askLogApp(app.url("/print?n=30&prefix=d2"));
      await sleep(3_000);
      await receiver.up();
      await receiver.waitFor("d2 1..30", () => receiver.numbered("d2").length === 30);
      expect(receiver.numbered("d2")).toEqual(range(1, 30));

      // Down while more lines pass than a drain may fall behind: the oldest are dropped and counted.
      await receiver.down();
      await askLogApp(app.url("/print?n=12000&prefix=d3"));
      await waitForLast(owner.token, app.name, "d3 12000");
      await receiver.up();
      await receiver.waitFor("d3 12000", () => receiver.numbered("d3").includes(12000));
      const got = receiver.numbered("d3");
      const notice = receiver.messages
        .map((m) => /^<45>1 \S+ host heroku logplex - Error L10 \(output buffer overflow\): (\d+) messages dropped since \S+\.$/.exec(m))
        .find(Boolean);
      expect(notice, "an L10 notice").toBeTruthy();
      expect(got).toEqual(range(got[0]!, 12000)); // the newest lines, in order, none twice
      expect(got.length).toBeLessThan(12000);
      expect(Number(notice![1])).toBeGreaterThanOrEqual(got[0]! - 1); // every missing line is counted
    } finally {
      await receiver.down();
    }
    const removed = await heroku(["drains:remove", drainUrl, "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expect(removed.code, removed.stderr).toBe(0);
    expect((await api(`/apps/${app.name}/log-drains`, { token: owner.token })).body).toEqual([]);
  });

  it("sends lines to a syslog+tls drain as RFC 5424 frames with octet counting, the drain's token as hostname", async () => {
    const app = await makeLogApp(owner);
    apps.push(app.name);
    const home = makeCliHome();
    const noPort = await heroku(["drains:add", "syslog+tls://logs.example.com", "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expect(noPort.code).not.toBe(0);
    expect(noPort.stderr).toContain("must name its port");
    const loopback = await heroku(["drains:add", "syslog://LOCALHOST.:514", "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
    expect(loopback.code).not.toBe(0);
    expect((await api(`/apps/${app.name}/log-drains`, { token: owner.token })).body).toEqual([]);

    // A TLS syslog receiver with the platform's certificate, reading one octet-counted stream per connection.
    const tlsDir = path.join(platform().home, "tls");
    const frames: string[] = [];
    const server = tls.createServer({ cert: readFileSync(path.join(tlsDir, "server.pem")), key: readFileSync(path.join(tlsDir, "server.key")) }, (socket) => {
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("end", () => frames.push(...parseLogplexBody(Buffer.concat(chunks))));
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(platform().drainPort, "127.0.0.1", resolve));
    try {
      const drainUrl = `syslog+tls://127.0.0.1:${platform().drainPort}`;
      const added = await heroku(["drains:add", drainUrl, "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });
      expect(added.stdout, added.stderr).toContain(`Successfully added drain ${drainUrl}`);
      const [drain] = (await api(`/apps/${app.name}/log-drains`, { token: owner.token })).body;
      await askLogApp(app.url("/print?n=15&prefix=s1"));
      const numbered = () =>
        frames
          .map((f) => new RegExp(`^<190>1 \\d{4}-\\d\\d-\\d\\dT\\S+ ${drain.token} app web\\.1 - s1 (\\d+)$`).exec(f)?.[1])
          .filter(Boolean)
          .map(Number);
      const deadline = Date.now() + 45_000;
      while (numbered().length < 15 && Date.now() < deadline) await sleep(200);
      expect(numbered()).toEqual(range(1, 15));
      expect(frames.some((f) => f.startsWith(`<45>1 `) && f.includes(` ${drain.token} heroku router - at=info`))).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("a dyno flooding its output for 10 s leaves the API responsive and the agent's memory bounded, and the log says what was dropped", async () => {
    const app = await makeLogApp(owner);
    apps.push(app.name);
    await askLogApp(app.url("/"));
    const agentPid = findAgent();
    const rssBefore = rssMb(agentPid);
    let rssPeak = rssBefore;
    // Tailed from before the flood: a notice sent mid-flood is soon pushed out of the
    // 1,500-line history by the lines that follow it, but a tail sees it pass.
    const notices = await readSse(await logSessionUrl(owner.token, app.name, { tail: true, lines: 0, source: "heroku", dyno: "logplex" }));
    await askLogApp(app.url("/flood?s=10&prefix=flood"));
    const latencies: number[] = [];
    const started = Date.now();
    while (Date.now() - started < 10_000) {
      const t0 = performance.now();
      const res = await api(`/apps/${app.name}`, { token: owner.token });
      latencies.push(performance.now() - t0);
      expect(res.status).toBe(200);
      rssPeak = Math.max(rssPeak, rssMb(agentPid));
      await sleep(200);
    }
    const flood = await askLogApp(app.url("/flooding"));
    expect(flood.written).toBeGreaterThan(100_000);
    latencies.sort((a, b) => a - b);
    // Generous: the point is that the API keeps answering during the flood, on a shared machine.
    expect(latencies[Math.floor(latencies.length * 0.95)]).toBeLessThan(3_000);
    // Bounded: kept, the flood's lines would be hundreds of megabytes (over a million a
    // second); what the agent's heap grows by before its collector runs is not a leak.
    expect(rssPeak - rssBefore).toBeLessThan(200);
    // The notices ride with the shipped batches, which run late on a loaded machine.
    const L10 = / heroku\[logplex\]: Error L10 \(output buffer overflow\): (\d+) messages dropped since \S+\.$/;
    try {
      await notices.waitFor((e) => L10.test(e.data), 60_000);
    } finally {
      notices.abort();
    }
    expect(notices.events.every((e) => L10.test(e.data))).toBe(true);
    const dropped = notices.events.reduce((sum, e) => sum + Number(L10.exec(e.data)![1]), 0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(flood.written);
  });
});

/** The platform's own host agent process: `dynoplane.js host` with the platform home's work dir. */
function findAgent(): number {
  const workDir = agentWorkDir(platform().home);
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (cmd.some((a) => a.endsWith("dynoplane.js")) && cmd.includes("host") && cmd[cmd.indexOf("--work-dir") + 1] === workDir) return Number(entry);
    } catch {
      // exited while we looked
    }
  }
  throw new Error(`no host agent with work dir ${workDir}`);
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
