import { readFileSync } from "node:fs";
import path from "node:path";
import { startForwarder } from "../local/forwarder.ts";
import { APPS_DOMAIN, cliEnvironment, exportLines } from "../local/cli-env.ts";
import { ensureLocalTls } from "../local/tls.ts";
import { integerFlag, parseFlags } from "./args.ts";

/**
 * A fixed default port, not a random one: the CLI keys its netrc entry and git's credential
 * helper by `localhost:<port>`, so a stable port keeps a login valid across runs. It differs
 * from `dynoplane start`'s so both can run side by side.
 */
export const DEFAULT_CONNECT_PORT = 5444;

const USAGE = "usage: dynoplane connect https://api.example.com [--port N] [--ca FILE]";

/** Reads `https://host`, or a bare `host[:port]` taken as https. */
function parseRemote(value: string): URL {
  try {
    return new URL(/^[a-z][a-z\d+.-]*:\/\//i.test(value) ? value : `https://${value}`);
  } catch {
    throw new Error(`not a URL: ${value}\n${USAGE}`);
  }
}

/**
 * `dynoplane connect <remote> [--port N] [--ca FILE]`: serves a remote dynoplane on
 * https://localhost:<port> until Ctrl-C, because the heroku CLI only sends its token to
 * localhost or heroku.com and git needs a trusted certificate for the remote's host.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { port: { type: "string" }, ca: { type: "string" } }, 1);
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const remote = parseRemote(positionals[0]!);
  const port = integerFlag(flags.port, "port", DEFAULT_CONNECT_PORT, 0, 65535);
  const caFile = flags.ca ?? process.env.DYNOPLANE_REMOTE_CA;
  const remoteCa = caFile ? readFileSync(caFile, "utf8") : undefined;

  // The same local CA and names as `dynoplane start`, so one trusted CA serves both and
  // neither re-issues the other's server certificate.
  const home = path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane");
  const tls = await ensureLocalTls(path.join(home, "tls"), ["localhost", `*.${APPS_DOMAIN}`, "127.0.0.1"]);

  let forwarder: Awaited<ReturnType<typeof startForwarder>>;
  try {
    forwarder = await startForwarder({ remote, port, tls, remoteCa });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") throw new Error(`port ${port} is in use; pick another with --port N`);
    throw err;
  }

  const hostPort = `localhost:${forwarder.port}`;
  console.log(
    [
      `Forwarding ${forwarder.url} to ${remote.origin}`,
      "",
      "Point the heroku CLI and git at it:",
      "",
      exportLines(cliEnvironment(hostPort, tls)),
      "",
      "Press Ctrl-C to stop.",
    ].join("\n"),
  );

  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await forwarder.close();
  return 0;
}
