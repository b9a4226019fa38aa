import { integerFlag, parseFlags, UsageError } from "./args.ts";

const number = { type: "string" } as const;

/** `dynoplane bench <name> [flags]` (`npm run bench:<name>`): one module per benchmark under src/bench/. */
const BENCHES: Record<string, { usage: string; run(args: string[]): Promise<number> }> = {
  addon: {
    usage: "bench addon [--rounds N]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number });
      return (await import("../bench/addon.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 10, 1) });
    },
  },
  api: {
    usage: "bench api [--seconds N] [--connections N]",
    async run(args) {
      const { values: v } = parseFlags(args, { seconds: number, connections: number });
      const options = { seconds: integerFlag(v.seconds, "seconds", 10, 1), connections: integerFlag(v.connections, "connections", 32, 1) };
      return (await import("../bench/api.ts")).run(options);
    },
  },
  backup: {
    usage: "bench backup [--rounds N] [--mb N]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number, mb: number });
      return (await import("../bench/backup.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 3, 1), mb: integerFlag(v.mb, "mb", 200, 1, 4096) });
    },
  },
  cron: {
    usage: "bench cron [--apps N]",
    async run(args) {
      const { values: v } = parseFlags(args, { apps: number });
      return (await import("../bench/cron.ts")).run({ apps: integerFlag(v.apps, "apps", 10_000, 1, 1_000_000) });
    },
  },
  deploy: {
    usage: "bench deploy [--rounds N] [--verbose]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number, verbose: { type: "boolean" } });
      return (await import("../bench/deploy.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 3, 1), verbose: v.verbose === true });
    },
  },
  logs: {
    usage: "bench logs [--lines N] [--rate N] [--seconds N]",
    async run(args) {
      const { values: v } = parseFlags(args, { lines: number, rate: number, seconds: number });
      const options = {
        lines: integerFlag(v.lines, "lines", 1000, 1),
        rate: integerFlag(v.rate, "rate", 200, 1),
        seconds: integerFlag(v.seconds, "seconds", 10, 1),
      };
      return (await import("../bench/logs.ts")).run(options);
    },
  },
  placement: {
    usage: "bench placement [--dynos N] [--hosts N]",
    async run(args) {
      const { values: v } = parseFlags(args, { dynos: number, hosts: number });
      const options = { dynos: integerFlag(v.dynos, "dynos", 10_000, 5, 1_000_000), hosts: integerFlag(v.hosts, "hosts", 200, 1, 100_000) };
      return (await import("../bench/placement.ts")).run(options);
    },
  },
  router: {
    usage: "bench router [--seconds N] [--connections N] [--sequential N]",
    async run(args) {
      const { values: v } = parseFlags(args, { seconds: number, connections: number, sequential: number });
      const options = {
        seconds: integerFlag(v.seconds, "seconds", 10, 1),
        connections: integerFlag(v.connections, "connections", 32, 1),
        sequential: integerFlag(v.sequential, "sequential", 1000, 1),
      };
      return (await import("../bench/router.ts")).run(options);
    },
  },
  start: {
    usage: "bench start [--rounds N]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number });
      return (await import("../bench/start.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 3, 1) });
    },
  },
  run: {
    usage: "bench run [--rounds N]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number });
      return (await import("../bench/run.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 10, 1) });
    },
  },
  wake: {
    usage: "bench wake [--rounds N]",
    async run(args) {
      const { values: v } = parseFlags(args, { rounds: number });
      return (await import("../bench/wake.ts")).run({ rounds: integerFlag(v.rounds, "rounds", 5, 1) });
    },
  },
};

export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const bench = name ? BENCHES[name] : undefined;
  if (!bench) {
    console.error(`usage: dynoplane bench <${Object.keys(BENCHES).join("|")}> [flags]`);
    return 2;
  }
  try {
    return await bench.run(rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`dynoplane bench ${name}: ${err.message}\nusage: dynoplane ${bench.usage}`);
    return 2;
  }
}
