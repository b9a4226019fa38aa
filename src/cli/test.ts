import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { ROOT } from "../local/worker.ts";

/** `dynoplane test` (`npm test`): the whole suite with vitest, offline. */
export async function run(args: string[]): Promise<number> {
  const vitest = path.join(path.dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");
  const result = spawnSync(process.execPath, [vitest, "run", ...args], { cwd: ROOT, stdio: "inherit" });
  return result.status ?? 1;
}
