import { openDb, type DbHandle } from "../../src/db/client.ts";
import { createAccount } from "../../src/services/access/accounts.ts";
import { createAuthorization } from "../../src/services/access/authorizations.ts";
import { api, platform } from "./api.ts";

let handle: Promise<DbHandle> | undefined;
/** A direct connection to the platform's database, for arranging and checking state. */
export function db() {
  handle ??= openDb(platform().databaseUrl);
  return handle.then((h) => h.db);
}

export async function closeDb() {
  if (handle) await (await handle).close();
  handle = undefined;
}

const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

export interface TestAccount {
  id: string;
  email: string;
  password: string;
  token: string;
}

/** A fresh account with a password and an API token. */
export async function makeAccount(opts: { expiresIn?: number } = {}): Promise<TestAccount> {
  const email = `user-${unique()}@example.com`;
  const password = `pw-${unique()}`;
  const account = await createAccount(await db(), { email, password });
  const { token } = await createAuthorization(await db(), account.id, { description: "test", expiresIn: opts.expiresIn }, { email });
  return { id: account.id, email, password, token };
}

/** A fresh app name that satisfies Heroku's rule. */
export const appName = (prefix = "app") => `${prefix}-${unique()}`.slice(0, 30).replace(/-$/, "x");

/** Creates an app through the API and returns its JSON. */
export async function makeApp(account: TestAccount, name = appName()) {
  const res = await api("/apps", { method: "POST", token: account.token, body: { name } });
  if (res.status !== 201) throw new Error(`creating ${name} failed: ${res.status} ${res.text}`);
  return res.body as { id: string; name: string };
}
