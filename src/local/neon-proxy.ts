import http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";

/**
 * The Neon serverless driver speaks the Postgres wire protocol inside WebSocket binary
 * frames, to `ws://<wsProxy>?address=host:port`. Neon's edge unwraps them; locally this
 * proxy does, so the driver path (the one production takes for Neon URLs) runs against
 * a local Postgres, in Node and in workerd alike.
 */
export interface NeonProxyOptions {
  /** Port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  /**
   * Send every connection here, whatever `?address=` names. This lets a Neon-looking
   * URL (`ep-….neon.tech`, which selects the Neon driver) reach the local Postgres.
   * Without it the proxy connects to the `?address=host:port` the driver asks for.
   */
  target?: { host: string; port: number };
}

export interface NeonProxy {
  port: number;
  /** `127.0.0.1:port/v2`, the form NEON_WS_PROXY and `openDb`'s `neonWsProxy` take. */
  address: string;
  /** WebSocket connections relayed since the start. */
  connections(): number;
  close(): Promise<void>;
}

/** Above this many unsent bytes towards the driver, reading from Postgres pauses. */
const HIGH_WATER = 1 << 20;

/**
 * Starts the proxy. It listens on 127.0.0.1 only: it relays to any address it is given
 * and checks no credentials of its own (Postgres does), so it must not be reachable
 * from other machines.
 */
export async function startNeonProxy(options: NeonProxyOptions = {}): Promise<NeonProxy> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const server = http.createServer((_req, res) => res.writeHead(426, { "Content-Type": "text/plain" }).end("WebSocket only\n"));
  const open = new Set<{ ws?: WebSocket; tcp: net.Socket }>();
  let connections = 0;

  server.on("upgrade", (req, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy()); // a client that goes away mid-handshake
    const destination = options.target ?? parseAddress(req.url ?? "");
    if (!destination) return refuse(socket, 400, "Bad Request");
    // Postgres is reached before the upgrade completes, so an unreachable database is an
    // HTTP error the driver reports rather than a WebSocket that closes without a word.
    const tcp = net.connect(destination.port, destination.host);
    const link: { ws?: WebSocket; tcp: net.Socket } = { tcp };
    open.add(link);
    tcp.once("error", () => {
      open.delete(link);
      if (link.ws) link.ws.terminate();
      else refuse(socket, 502, "Bad Gateway");
    });
    tcp.once("connect", () => {
      if (socket.destroyed) return void (open.delete(link), tcp.destroy());
      tcp.setNoDelay(true);
      wss.handleUpgrade(req, socket, head, (ws) => {
        link.ws = ws;
        connections++;
        relay(ws, tcp, () => open.delete(link));
      });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    address: `127.0.0.1:${port}/v2`,
    connections: () => connections,
    close: async () => {
      for (const link of open) {
        link.ws?.terminate();
        link.tcp.destroy();
      }
      open.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** `?address=host:port` from a request path; IPv6 hosts come in brackets. */
function parseAddress(url: string): { host: string; port: number } | undefined {
  const address = new URL(url, "http://proxy").searchParams.get("address") ?? "";
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address);
  if (!match) return undefined;
  const port = Number(match[2]);
  return port > 0 && port < 65536 ? { host: match[1]!, port } : undefined;
}

function refuse(socket: Duplex, status: number, reason: string) {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Copies bytes both ways with backpressure; either side closing closes the other. */
function relay(ws: WebSocket, tcp: net.Socket, done: () => void) {
  ws.on("message", (data: Buffer | ArrayBuffer | Buffer[]) => {
    const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    if (!tcp.write(chunk)) {
      ws.pause();
      tcp.once("drain", () => ws.resume());
    }
  });
  tcp.on("data", (chunk) => {
    ws.send(chunk, { binary: true }, () => {
      if (tcp.isPaused() && ws.bufferedAmount < HIGH_WATER) tcp.resume();
    });
    if (ws.bufferedAmount >= HIGH_WATER) tcp.pause();
  });
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
    if (ws.readyState === ws.OPEN) ws.close();
    tcp.destroy();
  };
  ws.on("close", finish);
  ws.on("error", finish);
  tcp.on("close", finish);
  tcp.on("error", finish);
}
