import path from "node:path";
import { openDb } from "../db/client.ts";
import { createAccount } from "../services/access/accounts.ts";
import { createAuthorization } from "../services/access/authorizations.ts";
import { parseFlags } from "./args.ts";
import { localDatabaseUrl } from "../local/running.ts";

/**
 * `dynoplane accounts:create EMAIL [--password P] [--name N]`: for operators. Without
 * --password a random one is generated. Prints the password and a new API key.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(args, { password: { type: "string" }, name: { type: "string" } }, 1);
  const email = positionals[0];
  if (!email) {
    console.error("usage: dynoplane accounts:create EMAIL [--password P] [--name N]");
    return 2;
  }
  const password = typeof flags.password === "string" ? flags.password : crypto.randomUUID().replace(/-/g, "").slice(0, 20);
  const url = process.env.DATABASE_URL ?? (await localDatabaseUrl(path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane")));
  const handle = await openDb(url, { webSocketConstructor: (await import("ws")).default });
  try {
    const account = await createAccount(handle.db, { email, password, name: typeof flags.name === "string" ? flags.name : null });
    const { token } = await createAuthorization(handle.db, account.id, { description: "API key", isDefault: true }, { email: account.email });
    console.log(`Created ${account.email}`);
    if (typeof flags.password !== "string") console.log(`Password: ${password}`);
    console.log(`API key:  ${token}`);
    return 0;
  } finally {
    await handle.close();
  }
}
