import { openDb } from "../db/client.ts";
import { createAccount } from "../services/access/accounts.ts";
import { createAuthorization } from "../services/access/authorizations.ts";

/** A fresh account on a benchmark's platform, and an API token for it. */
export async function benchToken(databaseUrl: string): Promise<string> {
  const handle = await openDb(databaseUrl);
  try {
    const email = `bench-${Date.now()}-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const account = await createAccount(handle.db, { email, password: crypto.randomUUID() });
    const { token } = await createAuthorization(handle.db, account.id, { description: "bench" }, { email });
    return token;
  } finally {
    await handle.close();
  }
}
