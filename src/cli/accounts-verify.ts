import path from "node:path";
import { openDb } from "../db/client.ts";
import { setAccountVerified } from "../services/accounts.ts";
import { parseFlags, UsageError } from "./args.ts";
import { localDatabaseUrl } from "../local/running.ts";

/**
 * `dynoplane accounts:verify EMAIL [--undo]`: for operators. A verified account (Heroku's
 * card on file) gets the larger pool of eco dyno hours from now on, this month included.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { undo: { type: "boolean" } }, 1);
  const email = positionals[0];
  if (!email) throw new UsageError("an account's email is required");
  const url = process.env.DATABASE_URL ?? (await localDatabaseUrl(path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane")));
  const handle = await openDb(url, { webSocketConstructor: (await import("ws")).default });
  try {
    const account = await setAccountVerified(handle.db, email, flags.undo !== true);
    console.log(`${account.email} is ${account.verified ? "verified" : "no longer verified"}`);
    return 0;
  } finally {
    await handle.close();
  }
}
