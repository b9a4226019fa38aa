import tls from "node:tls";
import { AuthError, type CommandAuth } from "./command-auth.ts";

/** The longest first line a client may send (a token is a few hundred bytes). */
const MAX_LINE_BYTES = 4096;
/** How long a client has to send its token after the TLS handshake. */
const LINE_TIMEOUT_MS = 10_000;

/** What the rendezvous server needs from the rest of the agent. */
export interface RendezvousOptions {
  auth: CommandAuth;
  /** PEM certificate (chain) and key the CLI verifies against the host name in `attach_url`. */
  cert: string;
  key: string;
  /** Hands a verified client to its dyno; false when no such dyno waits for one. */
  attach: (dynoId: string, socket: tls.TLSSocket) => Promise<boolean>;
  log?: (message: string) => void;
}

/**
 * The rendezvous server of attached one-off dynos (`heroku run`), as the stock CLI speaks it:
 * TLS, then the client's `<token>\r\n`; a token of purpose `rendezvous` (signed by the
 * control plane, single-use, 60 s, its subject the dyno) hands the connection to that dyno,
 * which greets and carries its terminal from then on. Anything else is refused with one line
 * and the connection closed; no dyno is touched.
 */
export function createRendezvousServer(o: RendezvousOptions): tls.Server {
  const server = tls.createServer({ cert: o.cert, key: o.key, minVersion: "TLSv1.2", handshakeTimeout: LINE_TIMEOUT_MS }, (socket) => {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on("error", () => {});
    const refuse = (why: string) => {
      if (!socket.destroyed) socket.end(`! ${why}\r\n`);
    };
    readFirstLine(socket).then(
      async (line) => {
        if (line === null) return refuse("expected the dyno's token on the first line");
        // The CLI sends the attach URL's path and query; the token is the path.
        const token = line.split("?")[0]!;
        let dynoId: string | undefined;
        try {
          dynoId = (await o.auth.verify(token, "rendezvous")).sub;
        } catch (err) {
          return refuse(err instanceof AuthError ? err.message : "invalid token");
        }
        if (!dynoId) return refuse("invalid token");
        if (!(await o.attach(dynoId, socket))) refuse("this dyno is not waiting for a client");
      },
      (err: Error) => {
        o.log?.(`rendezvous: ${err.message}`);
        socket.destroy();
      },
    );
  });
  // A failed or stalled handshake (handshakeTimeout) is the client's problem only.
  server.on("tlsClientError", () => {});
  return server;
}

/**
 * The client's first line (without `\r\n`), or null when it is missing, too long or late.
 * Nothing else is read: the client sends more only after it has the greeting.
 */
function readFirstLine(socket: tls.TLSSocket): Promise<string | null> {
  return new Promise((resolve) => {
    let text = "";
    const finish = (line: string | null) => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.setTimeout(0);
      socket.pause();
      resolve(line);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const nl = text.indexOf("\n");
      if (nl >= 0) {
        // Bytes after the line would be input sent before the greeting: the CLI sends none.
        if (nl + 1 < text.length) return finish(null);
        return finish(text.slice(0, nl).replace(/\r$/, "").trim());
      }
      if (text.length > MAX_LINE_BYTES) finish(null);
    };
    const onEnd = () => finish(null);
    socket.setTimeout(LINE_TIMEOUT_MS, () => finish(null));
    socket.on("data", onData);
    socket.once("end", onEnd);
  });
}
