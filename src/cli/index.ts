import { applyOfflineEnv } from "../local/offline.ts";
import { UsageError } from "./args.ts";

/** `dynoplane <command>`: one module per command, loaded on demand. */
const COMMANDS: Record<string, { summary: string; usage: string; load: () => Promise<{ run(args: string[]): Promise<number | undefined> }> }> = {
  start: {
    summary: "run the whole platform on this machine",
    usage:
      "start [--port N] [--verbose] [--python-packages index|host] [--python-index URL] [--python-runtimes URL] [--python-strict-versions] [--unsafe-no-sandbox]",
    load: () => import("./start.ts"),
  },
  migrate: { summary: "apply database migrations (DATABASE_URL)", usage: "migrate", load: () => import("./migrate.ts") },
  "accounts:create": {
    summary: "create an account: accounts:create EMAIL [--password P]",
    usage: "accounts:create EMAIL [--password P] [--name N]",
    load: () => import("./accounts-create.ts"),
  },
  "accounts:verify": {
    summary: "give an account the verified eco pool: accounts:verify EMAIL",
    usage: "accounts:verify EMAIL [--undo]",
    load: () => import("./accounts-verify.ts"),
  },
  "accounts:operator": {
    summary: "let an account see and drain the fleet on the dashboard: accounts:operator EMAIL",
    usage: "accounts:operator EMAIL [--undo]",
    load: () => import("./accounts-operator.ts"),
  },
  "accounts:limits": {
    summary: "show or set an account's limits (apps, add-ons, one-off dynos, dynos per app, memory share)",
    usage: "accounts:limits EMAIL [--apps N] [--addons N] [--one-off-dynos N] [--dynos-per-app N] [--memory-share F] [--reset]",
    load: () => import("./accounts-limits.ts"),
  },
  "cron:run": {
    summary: "run the scheduled jobs once, now (keep-alive, metering, idle sleep)",
    usage: "cron:run [--cron EXPR]",
    load: () => import("./cron-run.ts"),
  },
  host: {
    summary: "run this machine's host agent: host --control-plane URL --secret S",
    usage: "host --control-plane URL --secret S [flags]",
    load: () => import("./host.ts"),
  },
  "pg-client": {
    summary: "find or build (once) the pg_dump and pg_restore this machine's Postgres backups use",
    usage: "pg-client [MAJOR]",
    load: () => import("./pg-client.ts"),
  },
  "hosts:create": { summary: "register a host that runs dynos: hosts:create NAME", usage: "hosts:create NAME", load: () => import("./hosts-create.ts") },
  hosts: { summary: "list the hosts: state, heartbeat, capacity, dynos, agent", usage: "hosts", load: async () => (await import("./hosts.ts")).list },
  "hosts:drain": {
    summary: "move a host's dynos elsewhere, one at a time: hosts:drain NAME",
    usage: "hosts:drain NAME",
    load: async () => (await import("./hosts.ts")).drain,
  },
  "hosts:undrain": {
    summary: "let a drained host take dynos again: hosts:undrain NAME",
    usage: "hosts:undrain NAME",
    load: async () => (await import("./hosts.ts")).undrain,
  },
  "hosts:remove": { summary: "forget an empty host: hosts:remove NAME", usage: "hosts:remove NAME", load: async () => (await import("./hosts.ts")).remove },
  connect: {
    summary: "forward localhost to a remote dynoplane: connect https://api.example.com",
    usage: "connect REMOTE [--port N] [--ca FILE]",
    load: () => import("./connect.ts"),
  },
  test: { summary: "run the test suite", usage: "test [vitest arguments]", load: () => import("./test.ts") },
  build: { summary: "bundle the Worker offline (wrangler deploy --dry-run)", usage: "build", load: () => import("./build.ts") },
  bench: {
    summary: "run a benchmark: bench api",
    usage: "bench <addon|api|cron|deploy|logs|placement|router|run|start|wake> [flags]",
    load: () => import("./bench.ts"),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return ["usage: dynoplane <command> [args]", "", ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`)].join("\n");
}

applyOfflineEnv();
const [name, ...args] = process.argv.slice(2);
const command = name ? COMMANDS[name] : undefined;
if (!command) {
  console.error(name && name !== "help" && name !== "--help" ? `unknown command: ${name}\n\n${usage()}` : usage());
  process.exit(name && name !== "help" && name !== "--help" ? 2 : 0);
}
try {
  const code = await (await command.load()).run(args);
  if (typeof code === "number") process.exitCode = code;
} catch (err) {
  console.error(`dynoplane ${name}: ${err instanceof Error ? err.message : String(err)}`);
  // A command line the command does not take: say how it is used.
  if (err instanceof UsageError) console.error(`usage: dynoplane ${command.usage}`);
  // Exit now: exit hooks a command registered (async-exit-hook's) would end with 0.
  process.exit(err instanceof UsageError ? 2 : 1);
}
