import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { pipeline } from "node:stream";
import { rootCertificates } from "node:tls";
import { HOP_BY_HOP_HEADERS } from "../protocol/host.ts";
import type { LocalTls } from "./tls.ts";

export interface ForwarderOptions {
  /** Origin of the remote dynoplane, e.g. `https://api.example.com`. */
  remote: URL;
  /** Local port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** Certificate and key the local HTTPS server presents (issued for localhost by the local CA). */
  tls: Pick<LocalTls, "certPath" | "keyPath">;
  /** PEM of a private CA the remote's certificate chains to; trusted on top of the public roots. */
  remoteCa?: string | Buffer;
}

export interface Forwarder {
  port: number;
  /** `https://localhost:<port>`: what HEROKU_HOST and the git remotes point at. */
  url: string;
  close(): Promise<void>;
}

// Connection-specific headers describe one hop, never the next. `expect` is answered
// locally (Node sends 100 Continue), so it must not travel on.
const HOP_BY_HOP = new Set([...HOP_BY_HOP_HEADERS, "expect"]);

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Throws unless `remote` is an https origin (plain http only for loopback hosts). */
export function checkRemote(remote: URL): void {
  if (remote.protocol !== "https:" && !(remote.protocol === "http:" && LOOPBACK.has(remote.hostname))) {
    throw new Error(`the remote must be an https:// URL (got ${remote.protocol}//${remote.host}); plain http is allowed only for localhost`);
  }
  if (remote.username || remote.password || (remote.pathname !== "/" && remote.pathname !== "") || remote.search || remote.hash) {
    throw new Error(`the remote must be an origin such as https://api.example.com (got ${remote.href})`);
  }
}

/** Copies `headers` without hop-by-hop fields, including the ones the Connection header names. */
function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? "")
      .toLowerCase()
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  );
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  }
  return out;
}

/** The 502 the CLI can print: it shows `message` and `Error ID: <id>`. */
function badGateway(res: http.ServerResponse, remote: URL, err: Error): void {
  const body = JSON.stringify({ id: "bad_gateway", message: `Could not reach ${remote.origin}: ${err.message}` });
  res.writeHead(502, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" });
  res.end(body);
}

/**
 * An HTTPS server on 127.0.0.1 that relays every request to `remote`, streaming both ways,
 * so the stock heroku CLI and git (which only talk to localhost) can use a remote dynoplane.
 */
export async function startForwarder(opts: ForwarderOptions): Promise<Forwarder> {
  const { remote } = opts;
  checkRemote(remote);
  const secure = remote.protocol === "https:";
  const client = secure ? https : http;
  // Node's `ca` replaces the public roots, so the private CA is added to them instead.
  const ca = opts.remoteCa ? [...rootCertificates, opts.remoteCa.toString()] : undefined;
  const agent = secure ? new https.Agent({ keepAlive: true, ca }) : new http.Agent({ keepAlive: true });

  const server = https.createServer({ cert: readFileSync(opts.tls.certPath), key: readFileSync(opts.tls.keyPath) });
  // Node's 5-minute default would cut off slow uploads (git pushes) and long polls.
  server.requestTimeout = 0;
  let localOrigin = "";
  // Upgraded sockets leave the server's bookkeeping, so close() finds them here.
  const tunnels = new Set<Socket>();

  /** Headers for the remote: end-to-end ones, the remote's Host, and who asked. */
  const upstreamHeaders = (req: http.IncomingMessage): http.OutgoingHttpHeaders => {
    const headers = endToEnd(req.headers);
    const peer = req.socket.remoteAddress ?? "127.0.0.1";
    const prior = req.headers["x-forwarded-for"];
    headers.host = remote.host;
    headers["x-forwarded-for"] = prior ? `${prior}, ${peer}` : peer;
    headers["x-forwarded-proto"] = "https";
    headers["x-forwarded-host"] = req.headers.host ?? localOrigin.replace(/^https:\/\//, "");
    return headers;
  };

  const requestOptions = (req: http.IncomingMessage, headers: http.OutgoingHttpHeaders): http.RequestOptions => ({
    protocol: remote.protocol,
    hostname: remote.hostname.replace(/^\[|\]$/g, ""),
    port: remote.port || (secure ? 443 : 80),
    method: req.method,
    path: req.url,
    headers,
    agent,
  });

  server.on("request", (req, res) => {
    const upstream = client.request(requestOptions(req, upstreamHeaders(req)));
    upstream.on("response", (upRes) => {
      const headers = endToEnd(upRes.headers);
      // Redirects to the remote itself stay on the forwarder, where the CLI's token is sent.
      const location = upRes.headers.location;
      if (location?.startsWith(remote.origin + "/")) headers.location = localOrigin + location.slice(remote.origin.length);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
      // Send the status line now: an event stream or long poll may not write a byte for minutes.
      res.flushHeaders();
      pipeline(upRes, res, () => {});
    });
    // Once the answer has started, its stream reports its own failure (the pipeline then
    // cuts the client off); a remote that answered early (e.g. 413) and hung up on the rest
    // of the body is no error at all.
    upstream.on("error", (err) => {
      if (!res.headersSent) badGateway(res, remote, err);
    });
    req.on("error", () => upstream.destroy());
    // The client went away (Ctrl-C, timeout): stop the remote work too.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  // WebSocket and other upgrades: hand the two sockets to each other once the remote agrees.
  server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const headers = upstreamHeaders(req);
    headers.connection = "Upgrade";
    headers.upgrade = req.headers.upgrade;
    // A socket of its own: once upgraded it never returns to the keep-alive pool.
    const upstream = client.request({ ...requestOptions(req, headers), agent: false, ca });
    tunnels.add(socket);
    socket.on("close", () => tunnels.delete(socket));
    socket.on("error", () => upstream.destroy());
    upstream.on("upgrade", (upRes, upSocket, upHead) => {
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.on("error", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
      upSocket.pipe(socket).pipe(upSocket);
    });
    upstream.on("response", (upRes) => {
      // The remote refused the upgrade: relay its plain answer and close.
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`, "connection: close"];
      for (const [k, v] of Object.entries(endToEnd(upRes.headers))) for (const one of [v].flat()) lines.push(`${k}: ${one}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
      upRes.pipe(socket);
    });
    upstream.on("error", (err) => {
      const body = JSON.stringify({ id: "bad_gateway", message: `Could not reach ${remote.origin}: ${err.message}` });
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    upstream.end();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Loopback only: the forwarder carries the operator's token and must not be reachable from the network.
    server.listen(opts.port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  localOrigin = `https://localhost:${port}`;

  return {
    port,
    url: localOrigin,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Event streams and long polls would otherwise hold the close open.
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
        agent.destroy();
      }),
  };
}
