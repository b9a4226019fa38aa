import pg from "pg";
import { type DbHandle, openDb } from "../../src/db/client.ts";
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
