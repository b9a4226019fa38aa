import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

const FILE = "database-url";

/** Remembers the running local platform's database, so operator commands find it. */
export async function rememberLocalDatabase(home: string, url: string): Promise<void> {
  await fs.writeFile(path.join(home, FILE), url + "\n", { mode: 0o600 });
}

export async function forgetLocalDatabase(home: string): Promise<void> {
  await fs.rm(path.join(home, FILE), { force: true });
}

/** The database of the platform `npm start` runs from `home`; fails when none is running. */
export async function localDatabaseUrl(home: string): Promise<string> {
  const file = path.join(home, FILE);
  if (!existsSync(file)) throw new Error("no local platform is running here: start one with `npm start`, or set DATABASE_URL");
  return readFileSync(file, "utf8").trim();
}
