import path from "node:path";
import { fileURLToPath } from "node:url";
import { migrate as migrateNeon } from "drizzle-orm/neon-serverless/migrator";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { NeonDatabase } from "drizzle-orm/neon-serverless";
import type { NodePgDatabase } from "drizzle-orm/node-postgres";
import { openDb, type DbOptions } from "../db/client.ts";

/** drizzle/ at the repository root, where drizzle-kit writes migrations. */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../drizzle");

/** Applies every pending migration in drizzle/ (Node only; the Worker never migrates). */
export async function runMigrations(url: string, options: DbOptions = {}): Promise<void> {
  const handle = await openDb(url, options);
  try {
    if (handle.driver === "neon") await migrateNeon(handle.db as unknown as NeonDatabase, { migrationsFolder: MIGRATIONS_DIR });
    else await migratePg(handle.db as unknown as NodePgDatabase, { migrationsFolder: MIGRATIONS_DIR });
  } finally {
    await handle.close();
  }
}
