import { applyOfflineEnv } from "../local/offline.ts";

/** `dynoplane <command>`: one module per command, loaded on demand. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(args: string[]): Promise<number | undefined> }> }> = {
  start: { summary: "run the whole platform on this machine", load: () => import("./start.ts") },
  migrate: { summary: "apply database migrations (DATABASE_URL)", load: () => import("./migrate.ts") },
  "accounts:create": { summary: "create an account: accounts:create EMAIL [--password P]", load: () => import("./accounts-create.ts") },
  host: { summary: "run this machine's host agent: host --control-plane URL --secret S", load: () => import("./host.ts") },
  "hosts:create": { summary: "register a host that runs dynos: hosts:create NAME", load: () => import("./hosts-create.ts") },
  connect: { summary: "forward localhost to a remote dynoplane: connect https://api.example.com", load: () => import("./connect.ts") },
  test: { summary: "run the test suite", load: () => import("./test.ts") },
  build: { summary: "bundle the Worker offline (wrangler deploy --dry-run)", load: () => import("./build.ts") },
  bench: { summary: "run a benchmark: bench api", load: () => import("./bench.ts") },
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
  process.exitCode = 1;
}
