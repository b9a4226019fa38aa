import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { COMMAND, type Command } from "../protocol/host.ts";
import { AuthError, type CommandAuth } from "./command-auth.ts";
import { AGENT_PATHS, HOST_HEADERS, parseProxyPath } from "../protocol/host.ts";
import { proxyHttp, proxyUpgrade, refuse, type DynoTarget } from "./proxy.ts";

/** A command body is a DesiredDyno at most (config vars are capped at 32 kB). */
const MAX_COMMAND_BYTES = 1024 * 1024;

/** What the agent's HTTP server needs from the rest of the agent. */
export interface AgentServerOptions {
  auth: CommandAuth;
  /** Where the dyno instance that should receive its traffic listens, if one is up. */
  activeTarget: (dynoId: string) => DynoTarget | undefined;
  onCommand: (command: Command) => void | Promise<void>;
  /** PEM certificate and key: serve HTTPS instead of HTTP. */
  tls?: { cert: string; key: string };
}

class BodyError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return void (req.destroy(), reject(new BodyError(413, "command too large")));
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function failure(res: http.ServerResponse, err: unknown): void {
  if (err instanceof AuthError) refuse(res, err.status, err.status === 401 ? "unauthorized" : "unavailable", err.message);
  else if (err instanceof BodyError) refuse(res, err.status, "invalid_params", err.message);
  else refuse(res, 500, "internal_error", "the agent failed to handle this request");
}

async function handleCommand(o: AgentServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  // The token is checked before the body is read: unauthenticated callers cost nothing.
  await o.auth.bearer(req.headers.authorization, "command");
  let command: Command;
  try {
    command = COMMAND.parse(JSON.parse(await readBody(req, MAX_COMMAND_BYTES)));
  } catch (err) {
    throw err instanceof BodyError ? err : new BodyError(400, "not a valid command");
  }
  await o.onCommand(command);
  res.writeHead(202, { "content-type": "application/json" }).end("{}");
}

/** The route token of a proxied request, whose subject must be the dyno in the path. */
function routeToken(o: AgentServerOptions, req: http.IncomingMessage, dynoId: string) {
  const header = req.headers[HOST_HEADERS.route];
  return o.auth.verify(Array.isArray(header) ? undefined : header, "route", dynoId);
}

/**
 * The agent's HTTP server: POST /commands (Bearer JWT) and ANY /proxy/:dynoId/* (JWT in
 * X-Dynoplane-Route), both signed by the control plane's command key.
 */
export function createAgentServer(o: AgentServerOptions): http.Server {
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? "/";
    const route = parseProxyPath(url);
    const work = route
      ? routeToken(o, req, route.dynoId).then(() => {
          const target = o.activeTarget(route.dynoId);
          if (target === undefined) return refuse(res, 502, "bad_gateway", "the dyno is not running on this host", "not-running");
          proxyHttp(req, res, target, route.path);
        })
      : req.method === "POST" && url === AGENT_PATHS.commands
        ? handleCommand(o, req, res)
        : Promise.resolve(refuse(res, 404, "not_found", "no such endpoint"));
    work.catch((err: unknown) => failure(res, err));
  };
  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const route = parseProxyPath(req.url ?? "/");
    const reject = (status: string) => socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    if (!route) return void reject("404 Not Found");
    routeToken(o, req, route.dynoId).then(
      () => {
        const target = o.activeTarget(route.dynoId);
        if (target === undefined) reject("502 Bad Gateway");
        else proxyUpgrade(req, socket, head, target, route.path);
      },
      (err: unknown) => reject(err instanceof AuthError && err.status === 503 ? "503 Service Unavailable" : "401 Unauthorized"),
    );
  };
  const server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key }, onRequest) : http.createServer(onRequest);
  server.on("upgrade", onUpgrade);
  // Routed requests may stream for long; the router enforces Heroku's 30 s first-byte limit.
  server.requestTimeout = 0;
  return server;
}
