import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { withInstallLock } from "./install-lock.ts";
import { ROOT } from "./worker.ts";

/**
 * The stock heroku CLI, installed on demand (never by `npm install`): the test suite and the
 * benchmarks drive the platform with it exactly as a user would.
 */

/** The exact heroku CLI release dynoplane is kept compatible with. */
export const HEROKU_CLI_VERSION = "11.10.0";

/** Where the CLI is installed; DYNOPLANE_HEROKU_CLI_DIR overrides the default. */
const installDir = path.resolve(process.env.DYNOPLANE_HEROKU_CLI_DIR ?? path.join(ROOT, ".dynoplane", "heroku-cli"));
const lockPath = `${installDir}.lock`;
const packageDir = path.join(installDir, "node_modules", "heroku");

function installedVersion(): string | undefined {
  try {
    return JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")).version;
  } catch {
    return undefined;
  }
}

function binPath(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8"));
  const rel = typeof pkg.bin === "string" ? pkg.bin : pkg.bin.heroku;
  return path.join(packageDir, rel);
}

let ready: Promise<string> | undefined;

/**
 * Installs heroku@11.10.0 into <repo>/.dynoplane/heroku-cli once (kept between runs) and
 * returns the path of its bin script.
 */
export function ensureHerokuCli(): Promise<string> {
  ready ??= (async () => {
    if (installedVersion() === HEROKU_CLI_VERSION) return binPath();
    return withInstallLock(lockPath, 10 * 60_000, async () => {
      if (installedVersion() === HEROKU_CLI_VERSION) return binPath();
      mkdirSync(installDir, { recursive: true });
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(
          "npm",
          ["install", "--prefix", installDir, "--no-audit", "--no-fund", "--no-save", "--loglevel=error", `heroku@${HEROKU_CLI_VERSION}`],
          { stdio: ["ignore", "ignore", "inherit"] },
        );
        child.on("error", reject);
        child.on("exit", resolve);
      });
      if (code !== 0 || installedVersion() !== HEROKU_CLI_VERSION) {
        throw new Error(`npm install heroku@${HEROKU_CLI_VERSION} failed (exit ${code})`);
      }
      return binPath();
    });
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}
