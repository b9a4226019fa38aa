import os from "node:os";
import path from "node:path";
import { startAgent } from "../agent/index.ts";
import { parseArgs } from "./args.ts";

/** The agent's default port; the control plane reaches it at the --public-url. */
export const DEFAULT_HOST_PORT = 5100;

const USAGE =
  "usage: dynoplane host --control-plane URL --secret S [--port N] [--listen ADDR] [--public-url URL] [--work-dir D] [--capacity-mb N] [--ca FILE] [--tls-cert FILE --tls-key FILE] [--dyno-network CIDR] [--unsafe-no-sandbox]";

function text(flags: Record<string, string | true>, name: string): string | undefined {
  const v = flags[name];
  if (v === true) throw new Error(`--${name} needs a value\n${USAGE}`);
  return v;
}

function integer(flags: Record<string, string | true>, name: string, fallback: number): number {
  const raw = text(flags, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number (got ${raw})`);
  return n;
}

/**
 * `dynoplane host --control-plane URL --secret S ...`: runs this machine's host agent until
 * Ctrl-C or SIGTERM, then stops its dynos the way Heroku does (SIGTERM, SIGKILL after 30 s).
 */
export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, ["unsafe-no-sandbox"]);
  const controlPlaneUrl = text(flags, "control-plane");
  // The environment keeps the secret out of `ps` output.
  const hostSecret = text(flags, "secret") ?? process.env.DYNOPLANE_HOST_SECRET;
  if (positional.length || !controlPlaneUrl || !hostSecret) {
    console.error(USAGE);
    return 2;
  }
  const port = integer(flags, "port", DEFAULT_HOST_PORT);
  if (port > 65535) throw new Error(`--port must be a port number (got ${port})`);
  const defaultWorkDir = process.getuid?.() === 0 ? "/var/lib/dynoplane" : path.join(process.env.DYNOPLANE_HOME ?? ".dynoplane", "agent");
  const agent = await startAgent({
    controlPlaneUrl,
    hostSecret,
    caFile: text(flags, "ca") ?? process.env.DYNOPLANE_REMOTE_CA,
    listenHost: text(flags, "listen") ?? "0.0.0.0",
    listenPort: port,
    publicUrl: text(flags, "public-url"),
    tlsCertFile: text(flags, "tls-cert"),
    tlsKeyFile: text(flags, "tls-key"),
    workDir: path.resolve(text(flags, "work-dir") ?? defaultWorkDir),
    capacityMb: integer(flags, "capacity-mb", Math.floor(os.totalmem() / 1024 / 1024)),
    dynoSupernet: text(flags, "dyno-network"),
    unsafeNoSandbox: flags["unsafe-no-sandbox"] === true,
  });
  console.log(`dynoplane host agent listening on ${agent.url}, reporting to ${controlPlaneUrl}`);

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      console.log(`\n${signal}: stopping dynos ...`);
      resolve();
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
  });
  await agent.stop();
  return 0;
}
