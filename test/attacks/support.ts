import pg from "pg";
import { expect } from "vitest";
import { api } from "../support/api.ts";
import type { TestAccount } from "../support/factories.ts";
import { waitFor } from "../support/slugs.ts";

/** Runs statements as the holder of `url` would, in one session; rejects with the server's error. */
export async function asTenant(url: string, ...statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    const out: pg.QueryResult[] = [];
    for (const sql of statements) out.push(await client.query(sql));
    return out;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The first row's first column of one statement. */
export async function scalar<T = unknown>(url: string, sql: string): Promise<T> {
  const [res] = await asTenant(url, sql);
  return Object.values(res!.rows[0] ?? {})[0] as T;
}

/** The app's config vars. */
export const configOf = async (token: string, app: string) => (await api(`/apps/${app}/config-vars`, { token })).body as Record<string, string>;

/** A heroku-postgresql add-on on `app`, once provisioned, and the URL its attachment set. */
export async function provisionDatabase(owner: TestAccount, app: string, plan = "heroku-postgresql:essential-0") {
  const res = await api(`/apps/${app}/addons`, { method: "POST", token: owner.token, body: { plan: { name: plan } } });
  expect(res.status, res.text).toBe(201);
  const addon = await waitFor(
    `${res.body.name} provisioned`,
    async () => {
      const info = await api(`/apps/${app}/addons/${res.body.name}`, { token: owner.token });
      return info.body.state === "provisioned" ? info.body : undefined;
    },
    30_000,
    100,
  );
  // Its attachment's own variable comes first (DATABASE_URL, or its colour name's on an app with one).
  const url = (await configOf(owner.token, app))[addon.config_vars[0]]!;
  return { addon, url };
}
