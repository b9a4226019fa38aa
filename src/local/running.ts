import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { controlSocketPath } from "./worker.ts";

const FILE = "database-url";
const PORT_FILE = "worker-port";

/** Remembers the running local platform's database and Worker port, so operator commands find them. */
export async function rememberLocalDatabase(home: string, url: string, port: number): Promise<void> {
  await fs.writeFile(path.join(home, FILE), url + "\n", { mode: 0o600 });
  await fs.writeFile(path.join(home, PORT_FILE), `${port}\n`, { mode: 0o600 });
}

export async function forgetLocalDatabase(home: string): Promise<void> {
  await fs.rm(path.join(home, FILE), { force: true });
  await fs.rm(path.join(home, PORT_FILE), { force: true });
}

/** The control socket (scheduled runs) of the Worker `npm start` runs from `home`; fails when none is running. */
export function localWorker(home: string): { controlSocket: string } {
  if (!existsSync(path.join(home, PORT_FILE))) throw new Error("no local platform is running here: start one with `npm start`");
  return { controlSocket: controlSocketPath(path.join(home, "worker")) };
}

/** The database of the platform `npm start` runs from `home`; fails when none is running. */
export async function localDatabaseUrl(home: string): Promise<string> {
  const file = path.join(home, FILE);
  if (!existsSync(file)) throw new Error("no local platform is running here: start one with `npm start`, or set DATABASE_URL");
  return readFileSync(file, "utf8").trim();
}
