import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { ROOT } from "../local/worker.ts";

/** `dynoplane build` (`npm run build`): bundles the Worker into dist/ without contacting Cloudflare. */
export async function run(): Promise<number> {
  const wrangler = path.join(path.dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin", "wrangler.js");
  const result = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", path.join(ROOT, "dist")], { cwd: ROOT, stdio: "inherit" });
  return result.status ?? 1;
}
