import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fetch } from "undici";
import { api, get, platform, tlsAgent } from "./api.ts";

/**
 * The runtime test app: a web server on $PORT that answers JSON with its dyno name, pid,
 * boot id, a config var and whether a file it wrote earlier still exists. It logs every
 * request and exits on SIGTERM.
 */
const SERVER_JS = `
const http = require("http");
const fs = require("fs");
const crypto = require("crypto");
const boot = crypto.randomUUID();
const started = Date.now() - process.uptime() * 1000;
const state = () => ({
  dyno: process.env.DYNO,
  pid: process.pid,
  started,
  boot,
  greeting: process.env.GREETING ?? null,
  file: fs.existsSync("scratch.txt"),
  args: process.argv.slice(2),
});
console.log("booting " + process.env.DYNO + " pid " + process.pid);
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://dyno");
  const send = (body) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  console.log("request " + req.method + " " + url.pathname);
  if (url.pathname === "/write-file") {
    fs.writeFileSync("scratch.txt", "written by " + process.env.DYNO + " " + boot);
    return send(state());
  }
  if (url.pathname === "/sleep") {
    const timer = setTimeout(() => send({ slept: true, ...state() }), Number(url.searchParams.get("s") ?? 40) * 1000);
    res.on("close", () => clearTimeout(timer));
    return;
  }
  if (url.pathname === "/scan") {
    // A hostile tenant's port scan: connects to every host:port given, all at once.
    const net = require("net");
    const targets = (url.searchParams.get("targets") ?? "").split(",").filter(Boolean);
    const eth0 = (require("os").networkInterfaces().eth0 ?? []).find((a) => a.family === "IPv4");
    return Promise.all(targets.map((t) => new Promise((resolve) => {
      const [host, port] = t.split(":");
      const s = net.connect(Number(port), host);
      const done = (r) => { s.destroy(); resolve([t, r]); };
      s.setTimeout(2000, () => done("timeout"));
      s.on("connect", () => done("connected"));
      s.on("error", (e) => done(e.code));
    }))).then((results) => send({ address: eth0 ? eth0.address : null, port: Number(process.env.PORT), results: Object.fromEntries(results) }));
  }
  if (url.pathname === "/status") {
    // An answer with a chosen status after a chosen delay (the metrics tests' known traffic).
    const code = Number(url.searchParams.get("code") ?? 200);
    setTimeout(() => {
      res.writeHead(code, { "content-type": "text/plain" });
      res.end("status " + code);
    }, Number(url.searchParams.get("ms") ?? 0));
    return;
  }
  if (url.pathname === "/crash") {
    send({ crashing: true, ...state() });
    setTimeout(() => process.exit(3), 20);
    return;
  }
  send(state());
});
process.on("SIGTERM", () => {
  console.log("SIGTERM received, shutting down");
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
server.listen(Number(process.env.PORT), () => console.log("listening on " + process.env.PORT));
`;

/** A web process that runs but never binds $PORT (R10). */
const NO_PORT_JS = `
console.log("starting without binding $PORT");
setInterval(() => console.log("still not listening"), 1000);
`;

/** A background worker that only prints. */
const WORKER_JS = `
console.log("worker " + process.env.DYNO + " started");
setInterval(() => console.log("worker tick"), 5000);
process.on("SIGTERM", () => process.exit(0));
`;

let archive: Buffer | undefined;
/** The test app as a Heroku-layout slug (everything under ./app), gzipped tar; built once. */
export function slugArchive(): Buffer {
  if (archive) return archive;
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-runtime-slug-"));
  try {
    const app = path.join(root, "app");
    mkdirSync(app);
    writeFileSync(path.join(app, "server.js"), SERVER_JS);
    writeFileSync(path.join(app, "no-port.js"), NO_PORT_JS);
    writeFileSync(path.join(app, "worker.js"), WORKER_JS);
    writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "runtime-test", private: true, type: "commonjs" }, null, 2));
    writeFileSync(path.join(app, "Procfile"), "web: node server.js\nworker: node worker.js\n");
    const file = path.join(root, "slug.tgz");
    execFileSync("tar", ["-czf", file, "-C", root, "./app"]);
    archive = readFileSync(file);
    return archive;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Process types whose commands carry the app name as an argument, so the app's processes
 * can be told apart from every other app's in /proc.
 */
export const webProcessTypes = (app: string) => ({ web: `node server.js ${app}` });

/** Creates a slug through the Slug API, uploads the tarball to its URL and releases it. */
export async function deploySlug(token: string, app: string, processTypes: Record<string, string> = webProcessTypes(app)) {
  const slug = await api(`/apps/${app}/slugs`, { method: "POST", token, body: { process_types: processTypes, commit: "0123456789abcdef" } });
  if (slug.status !== 201) throw new Error(`creating a slug failed: ${slug.status} ${slug.text}`);
  const body = slugArchive();
  const put = await fetch(slug.body.blob.url, { method: "PUT", body, headers: { "Content-Type": "application/gzip" }, dispatcher: tlsAgent() });
  if (put.status !== 200) throw new Error(`uploading the slug failed: ${put.status} ${await put.text()}`);
  await put.body?.cancel();
  const release = await api(`/apps/${app}/releases`, { method: "POST", token, body: { slug: slug.body.id } });
  if (release.status !== 201) throw new Error(`releasing the slug failed: ${release.status} ${release.text}`);
  return { slug: slug.body, release: release.body };
}

/** The app's URL through the router. */
export const appUrl = (app: string, pathname = "/") => `https://${app}.apps.localhost:${platform().port}${pathname}`;

export interface AppAnswer {
  status: number;
  text: string;
  /** The app's JSON when it answered with JSON. */
  json?: { dyno: string; pid: number; boot: string; greeting: string | null; file: boolean; args: string[]; [k: string]: unknown };
}

/** One request to the app through the router; the answer's `pid` is the process's pid on this host. */
export async function visit(app: string, pathname = "/"): Promise<AppAnswer> {
  const res = await get(appUrl(app, pathname));
  const json = (res.headers.get("content-type") ?? "").includes("application/json") ? JSON.parse(res.text) : undefined;
  if (json && typeof json.pid === "number" && typeof json.dyno === "string") json.pid = hostPid(app, json.dyno, json.pid, json.started) ?? Number.NaN; // never a pid that signals many processes
  return { status: res.status, text: res.text, json };
}

/** Seconds since the epoch at which this machine booted, and the kernel's clock ticks per second. */
const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1] ?? 0);
const TICKS = 100;

/**
 * A dyno reports its pid as its sandbox's PID namespace sees it; the host pid is the one of
 * the app's processes with that DYNO and that pid in its innermost namespace (NSpid), and
 * when an old and a new instance both match, the one started closest to when it says.
 */
export function hostPid(app: string, dyno: string, innerPid: number, startedMs?: number): number | undefined {
  let best: { pid: number; off: number } | undefined;
  for (const pid of appProcesses(app)) {
    try {
      const ns =
        /^NSpid:\s+(.*)$/m
          .exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]
          ?.trim()
          .split(/\s+/)
          .map(Number) ?? [];
      if (ns.at(-1) !== innerPid || !readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`DYNO=${dyno}`)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
      const off = startedMs === undefined ? 0 : Math.abs(btime * 1000 + (startTicks / TICKS) * 1000 - startedMs);
      if (!best || off < best.off) best = { pid, off };
    } catch {
      // exited while we looked
    }
  }
  return best?.pid;
}

/**
 * Polls `check` until it returns something truthy; fails naming `what` and the last value
 * after `timeoutMs`. The first checks follow each other closely (25 ms, then half as long
 * again each time) up to `intervalMs` apart, so a wait ends soon after what it waits for.
 */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => T | Promise<T>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<Exclude<T, false | 0 | "" | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  let pause = Math.min(25, intervalMs);
  let last: unknown;
  for (;;) {
    try {
      last = await check();
      if (last) return last as Exclude<T, false | 0 | "" | null | undefined>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const described = typeof what === "function" ? what() : what;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${described}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(intervalMs, pause * 1.5);
  }
}

/** The app's dynos as the Platform API lists them. */
export async function listDynos(token: string, app: string): Promise<Array<{ name: string; type: string; state: string; [k: string]: any }>> {
  const res = await api(`/apps/${app}/dynos`, { token });
  if (res.status !== 200) throw new Error(`listing dynos failed: ${res.status} ${res.text}`);
  return res.body;
}

/** Waits until the app's dynos are exactly `names`, every one `up`. */
export function waitForUp(token: string, app: string, names: string[], timeoutMs = 90_000) {
  return waitFor(
    `${names.join(", ")} up`,
    async () => {
      const dynos = await listDynos(token, app);
      const ok = dynos.length === names.length && names.every((n) => dynos.some((d) => d.name === n && d.state === "up"));
      return ok ? dynos : (dynos.map((d) => `${d.name}:${d.state}`).join(",") || "no dynos", false);
    },
    timeoutMs,
  );
}

/** Waits until a request through the router is answered by the app and `accept` likes the answer. */
export function waitForAnswer(app: string, accept: (json: NonNullable<AppAnswer["json"]>) => boolean = () => true, timeoutMs = 90_000, pathname = "/") {
  return waitFor(
    `an answer from ${app}${pathname}`,
    async () => {
      const res = await visit(app, pathname);
      return res.status === 200 && res.json && accept(res.json) ? res.json : false;
    },
    timeoutMs,
  );
}

/**
 * Pids of the live processes on this machine running `node <script> <app>`: what the app's
 * dynos really run, whichever host agent started them.
 */
export function appProcesses(app: string, script = "server.js"): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (path.basename(argv[0] ?? "") !== "node" || argv[1] !== script || argv[2] !== app) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
      if (state !== "Z" && state !== "X") pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids.sort((a, b) => a - b);
}

/** Whether a process with this pid still runs (zombies count as gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

/** Deletes an app; its dynos stop on their hosts' next heartbeat. */
export async function destroyApp(token: string, app: string) {
  await api(`/apps/${app}`, { method: "DELETE", token });
}
