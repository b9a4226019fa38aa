import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { HOP_BY_HOP_HEADERS, HOST_HEADERS, type RouteError } from "../protocol/host.ts";

/** Per-connection headers a proxy must not forward, plus the route token (it never reaches the app). */
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, HOST_HEADERS.route]);

/** Raw header pairs without hop-by-hop ones (and without those `Connection` names). */
function forwardable(raw: string[]): string[] {
  const named = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === "connection") for (const n of raw[i + 1]!.split(",")) named.add(n.trim().toLowerCase());
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name) && !named.has(name)) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

function pairsToHeaders(raw: string[]): http.OutgoingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const prev = headers[name];
    headers[name] = prev === undefined ? raw[i + 1]! : ([] as string[]).concat(prev, raw[i + 1]!);
  }
  return headers;
}

/** Answers with a JSON error (Heroku's `{ id, message }`), or cuts the connection if a response began. */
export function refuse(res: http.ServerResponse, status: number, id: string, message: string, routeError?: RouteError): void {
  if (res.headersSent) return void res.destroy();
  const headers: http.OutgoingHttpHeaders = { "content-type": "application/json" };
  if (routeError) headers[HOST_HEADERS.routeError] = routeError;
  res.writeHead(status, headers).end(JSON.stringify({ id, message }));
}

/**
 * Connections to dynos, kept alive between requests: a routed request reuses one instead of
 * opening a connection into the dyno's network namespace (which costs more than the request).
 */
const DYNO_CONNECTIONS = new http.Agent({ keepAlive: true, maxFreeSockets: 64, scheduling: "lifo" });

/** How long connecting to a dyno may take before the request is answered as not reaching it. */
const CONNECT_TIMEOUT_MS = 5_000;

/** Where a dyno listens: its sandbox's address (loopback without one) and its $PORT. */
export interface DynoTarget {
  host: string;
  port: number;
}

/**
 * Streams a request to the dyno and the response back, neither buffered: uploads and
 * long responses flow as they come. A dyno that cannot be reached is a 502.
 */
export function proxyHttp(req: http.IncomingMessage, res: http.ServerResponse, target: DynoTarget, path: string): void {
  const started = Date.now();
  let connectMs = 0;
  const upstream = http.request({
    host: target.host,
    port: target.port,
    method: req.method,
    path,
    headers: pairsToHeaders(forwardable(req.rawHeaders)),
    agent: DYNO_CONNECTIONS,
  });
  upstream.on("socket", (socket) => {
    // A kept-alive connection is connected already: no time spent connecting.
    if (!socket.connecting) return;
    // A dyno that is gone does not always refuse at once; the router retries elsewhere.
    const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), CONNECT_TIMEOUT_MS);
    socket.once("connect", () => {
      clearTimeout(timer);
      connectMs = Date.now() - started;
    });
    upstream.once("close", () => clearTimeout(timer));
  });
  upstream.on("response", (up) => {
    // The router's log line reports connect time separately from service time, as Heroku's does.
    res.writeHead(up.statusCode ?? 502, up.statusMessage, [...forwardable(up.rawHeaders), HOST_HEADERS.connectMs, String(connectMs)]);
    up.pipe(res);
    up.on("error", () => res.destroy());
  });
  upstream.on("error", () => refuse(res, 502, "bad_gateway", "the dyno did not answer", "no-response"));
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

/** Splices an Upgrade request (WebSocket) onto a raw connection to the dyno. */
export function proxyUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, target: DynoTarget, path: string): void {
  const upstream = net.connect(target.port, target.host);
  let connected = false;
  upstream.on("connect", () => {
    connected = true;
    // Upgrade and Connection must pass here: they are the point of this request.
    const raw = req.rawHeaders;
    let lines = `${req.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== HOST_HEADERS.route) lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
    upstream.write(lines + "\r\n");
    if (head.length) upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
  });
  const close = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on("error", () => {
    if (!connected && socket.writable) socket.end("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    close();
  });
  socket.on("error", close);
  socket.on("close", close);
}
