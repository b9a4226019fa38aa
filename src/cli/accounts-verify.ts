import { setAccountVerified } from "../services/access/accounts.ts";
import { parseFlags, UsageError } from "./args.ts";
import { onOperatorDatabase } from "./operator-db.ts";

/**
 * `dynoplane accounts:verify EMAIL [--undo]`: for operators. A verified account (Heroku's
 * card on file) gets the larger pool of eco dyno hours from now on, this month included.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { undo: { type: "boolean" } }, 1);
  const email = positionals[0];
  if (!email) throw new UsageError("an account's email is required");
  return onOperatorDatabase(async (db) => {
    const account = await setAccountVerified(db, email, flags.undo !== true);
    console.log(`${account.email} is ${account.verified ? "verified" : "no longer verified"}`);
    return 0;
  });
}
