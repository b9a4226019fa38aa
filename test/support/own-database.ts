import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { type Database, type DbHandle, openDb } from "../../src/db/client.ts";
import { type AccountRow, type AppRow, accounts, apps } from "../../src/db/schema/index.ts";
import { ensureSigningKey } from "../../src/local/keys.ts";
import { runMigrations } from "../../src/node/migrate.ts";
import { platform } from "./api.ts";

export interface OwnDatabase {
  url: string;
  handle: DbHandle;
  drop(): Promise<void>;
}

/**
 * A migrated database of its own on the platform's Postgres, for a Worker of its own whose
 * hosts and builds the platform's agent must not see (and must not take).
 */
export async function createOwnDatabase(prefix: string): Promise<OwnDatabase> {
  const adminUrl = platform().adminDatabaseUrl!;
  const name = `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const control = new URL(platform().databaseUrl);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} owner ${control.username}`);
  } finally {
    await admin.end();
  }
  control.pathname = `/${name}`;
  const url = control.toString();
  await runMigrations(url);
  const handle = await openDb(url);
  return {
    url,
    handle,
    async drop() {
      await handle.close();
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`drop database if exists ${name} with (force)`).finally(() => admin.end());
    },
  };
}

/** A fresh signing key (a private JWK's JSON), for a Worker or context of a test's own. */
export async function throwawaySigningKey(): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-key-"));
  try {
    return await ensureSigningKey(path.join(dir, "signing-key.jwk"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** An account and an app of it, written straight into `db` (no API, no events). */
export async function seedApp(db: Database, prefix: string): Promise<{ account: AccountRow; app: AppRow }> {
  const unique = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const [account] = await db
    .insert(accounts)
    .values({ email: `${prefix}-${unique}@example.com`, passwordHash: "x" })
    .returning();
  const [app] = await db
    .insert(apps)
    .values({ name: `${prefix}-${unique}`.slice(0, 30), ownerId: account!.id })
    .returning();
  return { account: account!, app: app! };
}
