import os from "node:os";
import path from "node:path";
import { DEFAULT_PYTHON_SETTINGS, PYTHON_PACKAGE_MODES, type PythonBuildSettings } from "../agent/builder/python.ts";
import { METRICS_INTERVAL_MS, startAgent } from "../agent/index.ts";
import { integerFlag, parseFlags, UsageError } from "./args.ts";
import { pgClientTools } from "../local/pg-client.ts";

/** The agent's default port; the control plane reaches it at the --public-url. */
export const DEFAULT_HOST_PORT = 5100;
/** The rendezvous server's default port (`heroku run`), Heroku's own. */
export const DEFAULT_RENDEZVOUS_PORT = 5000;

const USAGE =
  "usage: dynoplane host --control-plane URL --secret S [--port N] [--listen ADDR] [--public-url URL] [--work-dir D] [--capacity-mb N] [--ca FILE] [--tls-cert FILE --tls-key FILE] [--rendezvous-port N] [--rendezvous-host NAME] [--rendezvous-cert FILE --rendezvous-key FILE] [--dyno-network CIDR] [--allow-service ADDR:PORT ...] [--python-packages index|host] [--python-index URL] [--python-runtimes URL] [--python-strict-versions] [--metrics-every S] [--unsafe-no-sandbox]";

/** `--allow-service 10.213.255.254:5432`: an IPv4 address and a port on this host that dynos may reach. */
function serviceFlag(value: string): { address: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`--allow-service takes ADDRESS:PORT, e.g. 10.213.255.254:5432 (got ${value})`);
  return { address: m[1]!, port };
}

function httpUrl(value: string, flag: string, what: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(value);
  } catch {
    // Refused below.
  }
  if (!parsed || !["http:", "https:"].includes(parsed.protocol)) throw new UsageError(`${flag} takes an http or https URL of ${what} (got ${value})`);
  return value.replace(/\/+$/, "");
}

/**
 * `--python-packages index|host`, `--python-index URL`, `--python-runtimes URL` and
 * `--python-strict-versions`: where this host's Python builds get packages and interpreters.
 */
export function pythonFlags(f: { packages?: string; index?: string; runtimes?: string; strictVersions?: boolean }): PythonBuildSettings {
  const mode = f.packages ?? DEFAULT_PYTHON_SETTINGS.packages;
  if (!(PYTHON_PACKAGE_MODES as readonly string[]).includes(mode))
    throw new UsageError(`--python-packages takes ${PYTHON_PACKAGE_MODES.join(" or ")} (got ${mode})`);
  return {
    packages: mode as PythonBuildSettings["packages"],
    index: httpUrl(f.index ?? DEFAULT_PYTHON_SETTINGS.index, "--python-index", "a package index"),
    runtimes: f.runtimes ? httpUrl(f.runtimes, "--python-runtimes", "a Python runtime source") : null,
    strictVersions: f.strictVersions === true,
  };
}

/**
 * `dynoplane host --control-plane URL --secret S ...`: runs this machine's host agent until
 * Ctrl-C or SIGTERM, then stops its dynos the way Heroku does (SIGTERM, SIGKILL after 30 s);
 * on SIGUSR2 it exits leaving them running, for the next agent (an upgrade) to adopt.
 */
export async function run(args: string[]): Promise<number> {
  const str = { type: "string" } as const;
  const { values: flags } = parseFlags(args, {
    "control-plane": str,
    secret: str,
    port: str,
    listen: str,
    "public-url": str,
    "work-dir": str,
    "capacity-mb": str,
    ca: str,
    "tls-cert": str,
    "tls-key": str,
    "rendezvous-port": str,
    "rendezvous-host": str,
    "rendezvous-cert": str,
    "rendezvous-key": str,
    "dyno-network": str,
    "allow-service": { type: "string", multiple: true },
    "python-packages": str,
    "python-index": str,
    "python-runtimes": str,
    "python-strict-versions": { type: "boolean" },
    "metrics-every": str,
    "unsafe-no-sandbox": { type: "boolean" },
  });
  const controlPlaneUrl = flags["control-plane"];
  // The environment keeps the secret out of `ps` output.
  const hostSecret = flags.secret ?? process.env.DYNOPLANE_HOST_SECRET;
  if (!controlPlaneUrl || !hostSecret) {
    console.error(USAGE);
    return 2;
  }
  const defaultWorkDir = process.getuid?.() === 0 ? "/var/lib/dynoplane" : path.join(process.env.DYNOPLANE_HOME ?? ".dynoplane", "agent");
  const agent = await startAgent({
    controlPlaneUrl,
    hostSecret,
    caFile: flags.ca ?? process.env.DYNOPLANE_REMOTE_CA,
    listenHost: flags.listen ?? "0.0.0.0",
    listenPort: integerFlag(flags.port, "port", DEFAULT_HOST_PORT, 0, 65535),
    publicUrl: flags["public-url"],
    tlsCertFile: flags["tls-cert"],
    tlsKeyFile: flags["tls-key"],
    rendezvousPort: integerFlag(flags["rendezvous-port"], "rendezvous-port", DEFAULT_RENDEZVOUS_PORT, 0, 65535),
    rendezvousHost: flags["rendezvous-host"],
    rendezvousCertFile: flags["rendezvous-cert"],
    rendezvousKeyFile: flags["rendezvous-key"],
    workDir: path.resolve(flags["work-dir"] ?? defaultWorkDir),
    capacityMb: integerFlag(flags["capacity-mb"], "capacity-mb", Math.floor(os.totalmem() / 1024 / 1024)),
    dynoSupernet: flags["dyno-network"],
    allowServices: (flags["allow-service"] ?? []).map(serviceFlag),
    python: pythonFlags({
      packages: flags["python-packages"],
      index: flags["python-index"],
      runtimes: flags["python-runtimes"],
      strictVersions: flags["python-strict-versions"],
    }),
    metricsMs: integerFlag(flags["metrics-every"], "metrics-every", METRICS_INTERVAL_MS / 1000, 1, 3600) * 1000,
    // Postgres backups: pg_dump and pg_restore of the server's major version (DYNOPLANE_PG_BIN, the machine's, or built once).
    pgClient: pgClientTools,
    unsafeNoSandbox: flags["unsafe-no-sandbox"] === true,
  });
  console.log(`dynoplane host agent listening on ${agent.url}, reporting to ${controlPlaneUrl}`);
  if (agent.rendezvous) console.log(`heroku run connects to rendezvous://${agent.rendezvous}`);

  const how = await new Promise<"stop" | "hand-off">((resolve) => {
    const shutdown = (signal: string) => {
      console.log(`\n${signal}: stopping dynos ...`);
      resolve("stop");
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    // An upgrade: this agent goes, its dynos stay for the next one started on the work dir.
    process.once("SIGUSR2", () => resolve("hand-off"));
  });
  if (how === "stop") await agent.stop();
  else {
    const kept = await agent.handOff();
    console.log(`SIGUSR2: handed ${kept} running dyno${kept === 1 ? "" : "s"} over to the next agent on this work dir; exiting`);
    // The dynos' launchers were this process's children: nothing of them may keep it running.
    process.exit(0);
  }
  return 0;
}
