import { type AccountLimits, limitsOf, type LimitChanges, setAccountLimits } from "../services/access/account-limits.ts";
import { getAccountByEmail } from "../services/access/accounts.ts";
import { readWranglerConfig } from "../local/workerd-config.ts";
import { ROOT } from "../local/worker.ts";
import path from "node:path";
import { parseFlags, UsageError } from "./args.ts";
import { onOperatorDatabase } from "./operator-db.ts";

const FLAGS = {
  apps: "apps",
  addons: "addons",
  "one-off-dynos": "oneOffDynos",
  "dynos-per-app": "dynosPerApp",
  "memory-share": "memoryShare",
} as const satisfies Record<string, keyof AccountLimits>;

/**
 * `dynoplane accounts:limits EMAIL [--apps N] [--addons N] [--one-off-dynos N]
 * [--dynos-per-app N] [--memory-share F] [--reset]`: shows an account's limits, and sets
 * its own where flags are given (`default` as a value, or `--reset` for all, goes back to
 * the platform's, which are the Worker's `ACCOUNT_LIMIT_*` variables).
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(
    args,
    {
      apps: { type: "string" },
      addons: { type: "string" },
      "one-off-dynos": { type: "string" },
      "dynos-per-app": { type: "string" },
      "memory-share": { type: "string" },
      reset: { type: "boolean" },
    },
    1,
  );
  const email = positionals[0];
  if (!email) throw new UsageError("an account's email is required");
  const changes: LimitChanges = {};
  for (const [flag, key] of Object.entries(FLAGS)) {
    const value = flags.reset === true ? "default" : flags[flag as keyof typeof FLAGS];
    if (value === undefined) continue;
    if (value === "default") changes[key] = null;
    else if (key === "memoryShare" ? /^(0(\.\d+)?|1(\.0+)?)$/.test(value) : /^\d+$/.test(value)) changes[key] = Number(value);
    else throw new UsageError(`--${flag} must be ${key === "memoryShare" ? "a fraction from 0 to 1" : "a whole number"} or "default" (got ${value})`);
  }
  const { vars } = readWranglerConfig(path.join(ROOT, "wrangler.toml"));
  return onOperatorDatabase(async (db) => {
    const account = await getAccountByEmail(db, email);
    if (Object.keys(changes).length) await setAccountLimits(db, account.id, changes);
    const limits = await limitsOf(db, { ...vars, ...process.env }, account.id);
    console.log(`${account.email}'s limits:`);
    for (const [flag, key] of Object.entries(FLAGS)) console.log(`  ${flag.padEnd(14)} ${limits[key]}`);
    return 0;
  });
}
