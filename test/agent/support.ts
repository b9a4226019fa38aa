import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll } from "vitest";
import { SandboxHost, type Sandbox } from "../../src/agent/sandbox/index.ts";
import { createSupervisor, type Supervisor, type SupervisorOptions } from "../../src/agent/supervisor.ts";
import type { DesiredDyno, LogLine } from "../../src/protocol/host.ts";

/**
 * The test app: a web server on $PORT that reports its environment, identity and
 * filesystem, and shuts down gracefully on SIGTERM unless told to ignore it.
 */
const SERVER_JS = `
const http = require("http");
const fs = require("fs");
console.log("booting " + process.env.DYNO + " version " + process.env.VERSION);
console.error("a line on stderr");
const server = http.createServer((req, res) => {
  const send = (v) => res.end(JSON.stringify(v));
  if (req.url === "/env") return send(process.env);
  if (req.url === "/whoami") return send({ pid: process.pid, uid: process.getuid(), gid: process.getgid(), cwd: process.cwd() });
  if (req.url === "/write") { fs.writeFileSync("scratch.txt", "left behind"); return send({ wrote: true }); }
  if (req.url === "/read") return send({ exists: fs.existsSync("scratch.txt") });
  if (req.url.startsWith("/peek?")) {
    const target = new URL(req.url, "http://x").searchParams.get("path");
    try { return send({ read: fs.readFileSync(target, "utf8") }); } catch (err) { return send({ error: err.code }); }
  }
  if (req.url.startsWith("/headers")) return send({ url: req.url, method: req.method, headers: req.headers });
  if (req.url === "/echo") return req.pipe(res);
  if (req.url === "/log") { console.log("request logged"); return send({}); }
  if (req.url === "/sh" && req.method === "POST") {
    let cmd = "";
    req.on("data", (c) => (cmd += c));
    return req.on("end", () => {
      const r = require("child_process").spawnSync("/bin/sh", ["-c", cmd], { encoding: "utf8", timeout: 20000 });
      send({ status: r.status, stdout: r.stdout, stderr: r.stderr });
    });
  }
  send({ version: process.env.VERSION });
});
process.on("SIGTERM", () => {
  console.log("got SIGTERM");
  if (process.env.IGNORE_TERM) return;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
server.listen(Number(process.env.PORT));
`;

/** A temporary directory the dyno user can pass through (mkdtemp makes them 0700). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}

/**
 * Builds a Heroku-layout slug (everything under ./app) with the test app and any `extra`
 * files (mode 0755 under bin/); returns its path.
 */
export function buildSlug(extra: Record<string, string | Buffer> = {}): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-slug-"));
  mkdirSync(path.join(root, "app"));
  writeFileSync(path.join(root, "app", "server.js"), SERVER_JS);
  writeFileSync(path.join(root, "app", "Procfile"), "web: node server.js\n");
  for (const [name, body] of Object.entries(extra)) {
    const file = path.join(root, "app", name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, body, { mode: name.startsWith("bin/") ? 0o755 : 0o644 });
  }
  const slug = path.join(root, "slug.tgz");
  execFileSync("tar", ["-czf", slug, "-C", root, "./app"]);
  return slug;
}

/** A desired dyno for the test slug; `over` changes anything. */
export function desiredDyno(over: Partial<DesiredDyno> = {}): DesiredDyno {
  return {
    id: randomUUID(),
    instance: randomUUID(),
    app_id: randomUUID(),
    app_name: "agent-test",
    name: "web.1",
    type: "web",
    command: "node server.js",
    size: "Basic",
    memory_mb: 512,
    release_version: 1,
    slug_id: randomUUID(),
    env: {},
    boot_timeout_s: 60,
    ...over,
  };
}

/** Runs a shell command inside a dyno of the test app, as the tenant would. */
export async function sh(target: Target, cmd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const res = await request(target, "POST", "/sh", {}, cmd, 30_000);
  return JSON.parse(res.body) as { status: number | null; stdout: string; stderr: string };
}

/** Polls `check` until it returns something truthy; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 15_000): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, false | 0 | "" | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Where a dyno answers: a loopback port, or its sandbox's address and port. */
export type Target = number | { host: string; port: number };

/** The address and port of a dyno that `inspect` showed. */
export const at = (info: { address?: string; port?: number }): Target => ({ host: info.address ?? "127.0.0.1", port: info.port! });

/** A request on a fresh connection (no keep-alive, so each one sees the current process). */
export function request(
  target: Target,
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: string,
  timeoutMs = 5_000,
): Promise<{ status: number; body: string }> {
  const { host, port } = typeof target === "number" ? { host: "127.0.0.1", port: target } : target;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: urlPath, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

/** A GET on a fresh connection. */
export function get(target: Target, urlPath = "/", headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return request(target, "GET", urlPath, headers);
}

/** The host pid of a dyno's app process (`node server.js`, the shell's child), found through its sandbox. */
export function appPid(info: { sandbox?: Sandbox; pid?: number }): number {
  const pids = info.sandbox ? info.sandbox.cgroup.pids() : [];
  for (const pid of pids) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd[0] === "node" || cmd[0]?.endsWith("/node")) return pid;
    } catch {
      // exited
    }
  }
  throw new Error(`no node process in the dyno's sandbox (pids ${pids.join(", ")})`);
}

/** Whether a process with this pid exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** A supervisor over a fresh work dir whose sink collects every line; `cleanups` stops it and removes the dir. */
export async function startSupervisor(
  slug: string,
  cleanups: Array<() => Promise<void> | void>,
  over: Partial<SupervisorOptions> = {},
): Promise<{ sup: Supervisor; lines: LogLine[]; workDir: string }> {
  const workDir = over.workDir ?? tempDir("dynoplane-agent-");
  const lines: LogLine[] = [];
  const sandboxes = over.sandboxes !== undefined ? over.sandboxes : await SandboxHost.create(workDir);
  const sup = await createSupervisor({ workDir, sink: (l) => lines.push(l), slugPath: async () => slug, stopGraceMs: 2_000, ...over, sandboxes });
  cleanups.push(async () => {
    await sup.stopAll();
    if (over.sandboxes === undefined) await sandboxes?.close();
    rmSync(workDir, { recursive: true, force: true });
  });
  return { sup, lines, workDir };
}

/**
 * A test file's supervisor fixture: the test slug built once for the file, and whatever a
 * test starts (supervisors, directories) cleaned up after it.
 */
export function supervisorFixture() {
  let slug = "";
  const cleanups: Array<() => Promise<void> | void> = [];
  beforeAll(() => {
    slug = buildSlug();
    return () => rmSync(path.dirname(slug), { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return { cleanups, start: (over: Partial<SupervisorOptions> = {}) => startSupervisor(slug, cleanups, over) };
}

/** A node one-liner, run inside a dyno with `HOST PORT`, that reports how a TCP connect went: connected, a refusal's code, or a timeout. */
export const CONNECT = `node -e 'const s=require("net").connect(+process.argv[2],process.argv[1]);s.setTimeout(1500,()=>{console.log("timeout");process.exit(0)});s.on("connect",()=>{console.log("connected");process.exit(0)});s.on("error",e=>{console.log(e.code);process.exit(0)})'`;
