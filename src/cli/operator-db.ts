import path from "node:path";
import { type Database, openDb } from "../db/client.ts";
import { ApiError } from "../errors.ts";
import { localDatabaseUrl } from "../local/running.ts";

/**
 * Runs an operator command's work on the control plane's database: DATABASE_URL's, or the
 * local platform's (`DYNOPLANE_HOME`, default `.dynoplane`). A refusal (`ApiError`) is
 * printed and the command exits 1.
 */
export async function onOperatorDatabase(fn: (db: Database) => Promise<number>): Promise<number> {
  const url = process.env.DATABASE_URL ?? (await localDatabaseUrl(path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane")));
  const handle = await openDb(url, { webSocketConstructor: (await import("ws")).default });
  try {
    return await fn(handle.db);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    console.error(err.message);
    return 1;
  } finally {
    await handle.close();
  }
}
