import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import { Agent, fetch } from "undici";
import { openDb } from "../db/client.ts";
import { dynos } from "../db/schema/index.ts";
import { APPS_DOMAIN } from "../local/cli-env.ts";
import type { Platform } from "../local/platform.ts";
import { benchToken } from "./account.ts";

/** The smallest useful web app: answers `ok` to every request on $PORT and stops on SIGTERM. */
export const SAMPLE_APP_JS = `
const http = require("http");
const server = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": "2" });
  res.end("ok");
});
process.on("SIGTERM", () => { server.close(() => process.exit(0)); server.closeAllConnections(); });
server.listen(Number(process.env.PORT));
`;

/** A one-file Node app (`web: node server.js`) as a Heroku-layout slug: everything under ./app, gzipped. */
export function nodeAppSlug(serverJs: string): Buffer {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-app-"));
  try {
    mkdirSync(path.join(root, "app"));
    writeFileSync(path.join(root, "app", "server.js"), serverJs);
    writeFileSync(path.join(root, "app", "Procfile"), "web: node server.js\n");
    execFileSync("tar", ["-czf", path.join(root, "slug.tgz"), "-C", root, "./app"]);
    return readFileSync(path.join(root, "slug.tgz"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

let archive: Buffer | undefined;
/** The sample app's slug, built once per process. */
export function sampleAppSlug(): Buffer {
  archive ??= nodeAppSlug(SAMPLE_APP_JS);
  return archive;
}

/** An HTTP client that trusts the platform's CA and connects to 127.0.0.1 whatever the host name (`*.localhost` included). */
export function localDispatcher(caPath: string): Agent {
  return new Agent({ connect: { ca: readFileSync(caPath), lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) } });
}

/** A deployed sample app on a local platform, with what a benchmark needs to reach it. */
export interface SampleApp {
  app: string;
  appId: string;
  /** `https://<app>.apps.localhost:<port>`, through the router. */
  appUrl: string;
  token: string;
  /** Platform API headers for `token`. */
  headers: Record<string, string>;
  dispatcher: Agent;
}

/**
 * Creates an account, an API token and an app, deploys the sample app through the Slug
 * API (create, upload, release), and resolves once web.1 reads `up` and the app answers
 * through the router.
 */
export async function deploySampleApp(platform: Platform, timeoutMs = 90_000): Promise<SampleApp> {
  const dispatcher = localDispatcher(platform.tls.caPath);
  const token = await benchToken(platform.databaseUrl);
  const headers = { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const post = async (p: string, body: unknown) => {
    const res = await fetch(`${platform.apiUrl}${p}`, { method: "POST", headers, body: JSON.stringify(body), dispatcher });
    // biome-ignore lint/suspicious/noExplicitAny: the Platform API's JSON, read field by field below
    const json = (await res.json()) as Record<string, any>;
    if (res.status !== 201) throw new Error(`POST ${p}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  const created = await post("/apps", {});
  const app = created.name as string;
  const slug = await post(`/apps/${app}/slugs`, { process_types: { web: "node server.js" } });
  const put = await fetch(slug.blob.url, { method: "PUT", body: sampleAppSlug(), headers: { "Content-Type": "application/gzip" }, dispatcher });
  if (put.status !== 200) throw new Error(`uploading the slug: ${put.status} ${await put.text()}`);
  await put.body?.cancel();
  await post(`/apps/${app}/releases`, { slug: slug.id });

  const appUrl = `https://${app}.${APPS_DOMAIN}:${platform.port}`;
  const target: SampleApp = { app, appId: created.id as string, appUrl, token, headers, dispatcher };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await dynoStates(platform.apiUrl, target);
    const res = states.every((s) => s === "up") && states.length ? await fetch(`${appUrl}/`, { dispatcher }).catch(() => null) : null;
    const body = res ? await res.text() : "";
    if (res?.status === 200 && body === "ok") return target;
    if (Date.now() > deadline) throw new Error(`the sample app did not come up: dynos ${states.join(",") || "none"}, ${res?.status} ${body.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The states of the app's dynos as `GET /apps/{app}/dynos` lists them. */
export async function dynoStates(apiUrl: string, t: Pick<SampleApp, "app" | "headers" | "dispatcher">): Promise<string[]> {
  const res = await fetch(`${apiUrl}/apps/${t.app}/dynos`, { headers: t.headers, dispatcher: t.dispatcher });
  if (res.status !== 200) throw new Error(`GET /apps/${t.app}/dynos: ${res.status} ${await res.text()}`);
  return ((await res.json()) as Array<{ state: string }>).map((d) => d.state);
}

/**
 * Where a sandboxed dyno listening on `port` is reached from this host: the address of the
 * first dyno network namespace that accepts on that port (loopback when dynos run unsandboxed).
 */
export async function dynoAddress(port: number): Promise<string> {
  const names = (await fs.readdir("/run/netns").catch(() => [] as string[])).filter((n) => n.startsWith("dp"));
  for (const name of names) {
    const out = await new Promise<string>((resolve) =>
      execFile("ip", ["-n", name, "-4", "-o", "addr", "show", "dev", "eth0"], (err, stdout) => resolve(err ? "" : stdout)),
    );
    const address = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1];
    if (address && (await accepts(address, port))) return address;
  }
  return "127.0.0.1";
}

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(500, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** The port the app's running web dyno listens on, as its host agent reported it (`dynos.port`). */
export async function webDynoPort(databaseUrl: string, appId: string): Promise<number> {
  const handle = await openDb(databaseUrl);
  try {
    const [row] = await handle.db
      .select({ port: dynos.port })
      .from(dynos)
      .where(and(eq(dynos.appId, appId), eq(dynos.type, "web"), eq(dynos.state, "up")))
      .limit(1);
    if (!row?.port) throw new Error("the app has no running web dyno with a port");
    return row.port;
  } finally {
    await handle.close();
  }
}
