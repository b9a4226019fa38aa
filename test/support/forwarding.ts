import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Agent, fetch } from "undici";
import type { Forwarder } from "../../src/local/forwarder.ts";
import { ensureLocalTls, type LocalTls } from "../../src/local/tls.ts";

export const ACCEPT = "application/vnd.heroku+json; version=3";

export interface LocalSide {
  root: string;
  /** The forwarder's own certificate, from a CA unrelated to any remote's. */
  tls: LocalTls;
  /** Trusts only that local CA: an answer it accepts came through a forwarder. */
  agent: Agent;
  httpsAgent: https.Agent;
  cleanup(): Promise<void>;
}

/** A scratch directory and a local CA for forwarders under test, plus clients that trust only it. */
export async function localSide(): Promise<LocalSide> {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-forward-"));
  const tls = await ensureLocalTls(path.join(root, "local-tls"), ["localhost", "127.0.0.1"]);
  const ca = readFileSync(tls.caPath);
  const agent = new Agent({ connect: { ca } });
  const httpsAgent = new https.Agent({ ca });
  const cleanup = async () => {
    await agent.close();
    httpsAgent.destroy();
    rmSync(root, { recursive: true, force: true });
  };
  return { root, tls, agent, httpsAgent, cleanup };
}

export interface ViaInit {
  method?: string;
  token?: string;
  /** Objects are sent as JSON; bytes and streams as they are. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A request through a forwarder, the way the heroku CLI makes it (Accept v3, Bearer token). */
export async function via(side: LocalSide, fwd: Forwarder, urlPath: string, init: ViaInit = {}) {
  const headers: Record<string, string> = { Accept: ACCEPT, ...init.headers };
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  const raw = init.body instanceof Uint8Array || init.body instanceof ReadableStream;
  if (init.body !== undefined && !raw) headers["Content-Type"] = "application/json";
  const res = await fetch(fwd.url + urlPath, {
    method: init.method ?? "GET",
    headers,
    body: (raw ? init.body : init.body === undefined ? undefined : JSON.stringify(init.body)) as any,
    duplex: "half",
    redirect: "manual",
    dispatcher: side.agent,
  } as Parameters<typeof fetch>[1]);
  const text = await res.text();
  const body = (res.headers.get("content-type") ?? "").includes("json") ? JSON.parse(text) : text;
  return { status: res.status, headers: res.headers, text, body };
}

export interface EchoUpstream {
  port: number;
  /** PEM of the private CA that signed its certificate. */
  ca: string;
  /** Lets a held route go on to its next step. */
  open(gate: string): void;
  close(): Promise<void>;
}

/**
 * A tiny HTTPS remote with a private CA, for what the Platform API cannot show:
 * `/echo` reports the request (headers, size, sha256), `/stream` holds an event stream
 * between gates, `/duplex` echoes the body as it arrives, `/redirect` points back at
 * itself, and upgrades become an echo tunnel.
 */
export async function startEchoUpstream(dir: string): Promise<EchoUpstream> {
  const upTls = await ensureLocalTls(dir, ["localhost", "127.0.0.1"]);
  const gates = new Map<string, () => void>();
  const gate = (name: string) => new Promise<void>((resolve) => gates.set(name, resolve));
  let port = 0;
  const server = https.createServer({ cert: readFileSync(upTls.certPath), key: readFileSync(upTls.keyPath) }, async (req, res) => {
    if (req.url!.startsWith("/echo")) {
      const hash = createHash("sha256");
      let length = 0;
      for await (const chunk of req) hash.update(chunk), (length += chunk.length);
      res.writeHead(200, { "content-type": "application/json", connection: "keep-alive, x-hop", "x-hop": "1", "x-kept": "yes" });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length, sha256: hash.digest("hex") }));
    } else if (req.url === "/stream") {
      const first = gate("headers-seen");
      const second = gate("first-seen");
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      await first;
      res.write("data: first\n\n");
      await second;
      res.end("data: second\n\n");
    } else if (req.url === "/duplex") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.flushHeaders();
      req.pipe(res);
    } else if (req.url === "/redirect") {
      res.writeHead(302, { location: `https://localhost:${port}/echo?from=redirect` }).end();
    } else res.writeHead(404).end();
  });
  server.on("upgrade", (req, socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\nX-Seen-Host: ${req.headers.host}\r\n\r\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
  return {
    port,
    ca: readFileSync(upTls.caPath, "utf8"),
    open: (name) => gates.get(name)?.(),
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}
