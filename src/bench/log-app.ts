import { fetch, type Dispatcher } from "undici";
import { nodeAppSlug } from "./sample-app.ts";

/**
 * A web app that prints log lines on request, for the log benchmark and tests:
 *   /print?n=N&prefix=P&pad=K  prints `P 1` ... `P N` at once (each followed by K x's when pad is given)
 *   /paced?n=N&rate=R&prefix=P prints N lines at R lines/s, each `P i t=<epoch ms>` (the write time)
 *   /flood?s=S&prefix=P        prints `P i` as fast as its output is taken for S seconds, in the background
 *   /flooding                  whether a flood is still running, and how many lines it wrote
 * Every other path answers the dyno's name and the pids the tests need.
 */
export const LOG_APP_JS = `
const http = require("http");
const now = () => performance.timeOrigin + performance.now();
let flood = { running: false, written: 0 };
console.log("log app " + process.env.DYNO + " up");
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://dyno");
  const q = (k, d) => url.searchParams.get(k) ?? d;
  const send = (v) => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify(v)); };
  const prefix = q("prefix", "line");
  if (url.pathname === "/print") {
    const n = Number(q("n", "1")), pad = Number(q("pad", "0"));
    const tail = pad ? " " + "x".repeat(pad) : "";
    let out = "";
    for (let i = 1; i <= n; i++) out += prefix + " " + i + tail + "\\n";
    process.stdout.write(out, () => send({ printed: n }));
    return;
  }
  if (url.pathname === "/paced") {
    const n = Number(q("n", "100")), rate = Number(q("rate", "100"));
    const started = now();
    let i = 0;
    const tick = () => {
      const due = Math.min(n, Math.floor(((now() - started) / 1000) * rate) + 1);
      while (i < due) { i++; process.stdout.write(prefix + " " + i + " t=" + now().toFixed(3) + "\\n"); }
      if (i < n) setTimeout(tick, Math.max(1, Math.floor(1000 / rate)));
    };
    tick();
    return send({ pacing: n, rate });
  }
  if (url.pathname === "/flood") {
    const until = now() + Number(q("s", "10")) * 1000;
    flood = { running: true, written: 0 };
    // As fast as the pipe takes it: a full pipe (the platform reading slower) waits for
    // 'drain' rather than piling the output up in this process until it runs out of memory.
    const burst = () => {
      let chunk = "";
      for (let k = 0; k < 200; k++) chunk += prefix + " " + ++flood.written + "\\n";
      const more = process.stdout.write(chunk);
      if (now() >= until) flood.running = false;
      else if (more) setImmediate(burst);
      else process.stdout.once("drain", burst);
    };
    setImmediate(burst);
    return send({ flooding: true });
  }
  if (url.pathname === "/flooding") return send(flood);
  send({ dyno: process.env.DYNO, pid: process.pid, ppid: process.ppid });
});
process.on("SIGTERM", () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
server.listen(Number(process.env.PORT));
`;

let archive: Buffer | undefined;
/** The app as a Heroku-layout slug (everything under ./app), gzipped; built once per process. */
export function logAppSlug(): Buffer {
  archive ??= nodeAppSlug(LOG_APP_JS);
  return archive;
}

/** Where and as whom to deploy. */
export interface DeployTarget {
  apiUrl: string;
  token: string;
  app: string;
  /** Trusts the platform's CA (and resolves app hosts) for every request. */
  dispatcher: Dispatcher;
}

/** Deploys the log app through the Slug API (create, upload, release) and waits until its URL answers from a dyno. */
export async function deployLogApp(t: DeployTarget, appUrl: string, timeoutMs = 60_000): Promise<void> {
  const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${t.token}`, "Content-Type": "application/json" };
  const post = async (p: string, body: unknown) => {
    const res = await fetch(`${t.apiUrl}${p}`, { method: "POST", headers, body: JSON.stringify(body), dispatcher: t.dispatcher });
    // biome-ignore lint/suspicious/noExplicitAny: the Platform API's JSON, read field by field below
    const json = (await res.json()) as Record<string, any>;
    if (res.status !== 201) throw new Error(`POST ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const slug = await post(`/apps/${t.app}/slugs`, { process_types: { web: "node server.js" } });
  const put = await fetch(slug.blob.url, { method: "PUT", body: logAppSlug(), headers: { "Content-Type": "application/gzip" }, dispatcher: t.dispatcher });
  if (put.status !== 200) throw new Error(`uploading the slug: ${put.status} ${await put.text()}`);
  await post(`/apps/${t.app}/releases`, { slug: slug.id });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(appUrl, { dispatcher: t.dispatcher }).catch(() => null);
    const body = res ? await res.text() : "";
    if (res?.status === 200 && body.includes('"dyno"')) return;
    if (Date.now() > deadline) throw new Error(`the log app did not come up: ${res?.status} ${body.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
