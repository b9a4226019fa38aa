import path from "node:path";
import { openDb } from "../db/client.ts";
import { localDatabaseUrl } from "../local/running.ts";
import { setAccountOperator } from "../services/accounts.ts";
import { parseFlags, UsageError } from "./args.ts";

/**
 * `dynoplane accounts:operator EMAIL [--undo]`: lets an account see and drain the fleet on
 * the dashboard (`/dashboard/operator/hosts`), or takes that away.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { undo: { type: "boolean" } }, 1);
  const email = positionals[0];
  if (!email) throw new UsageError("an account's email is required");
  const url = process.env.DATABASE_URL ?? (await localDatabaseUrl(path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane")));
  const handle = await openDb(url, { webSocketConstructor: (await import("ws")).default });
  try {
    const account = await setAccountOperator(handle.db, email, flags.undo !== true);
    console.log(`${account.email} is ${account.operator ? "an operator" : "no longer an operator"}`);
    return 0;
  } finally {
    await handle.close();
  }
}
