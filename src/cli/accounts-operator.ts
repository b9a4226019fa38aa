import { setAccountOperator } from "../services/access/accounts.ts";
import { parseFlags, UsageError } from "./args.ts";
import { onOperatorDatabase } from "./operator-db.ts";

/**
 * `dynoplane accounts:operator EMAIL [--undo]`: lets an account see and drain the fleet on
 * the dashboard (`/dashboard/operator/hosts`), or takes that away.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { undo: { type: "boolean" } }, 1);
  const email = positionals[0];
  if (!email) throw new UsageError("an account's email is required");
  return onOperatorDatabase(async (db) => {
    const account = await setAccountOperator(db, email, flags.undo !== true);
    console.log(`${account.email} is ${account.operator ? "an operator" : "no longer an operator"}`);
    return 0;
  });
}
