import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import path from "node:path";
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Takes the install lock (an exclusively created file); breaks a lock whose holder is gone or that is stale. */
async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(lockPath), { recursive: true });
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (lockIsAbandoned()) {
        rmSync(lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockPath}`);
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}

function lockIsAbandoned(): boolean {
  try {
    const pid = Number(readFileSync(lockPath, "utf8"));
    if (Date.now() - statSync(lockPath).mtimeMs > 10 * 60_000) return true;
    if (!pid) return false; // being written right now
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ESRCH" || code === "ENOENT";
  }
}

let ready: Promise<string> | undefined;

/**
 * Installs heroku@11.10.0 into <repo>/.dynoplane/heroku-cli once (kept between runs) and
 * returns the path of its bin script.
 */
export function ensureHerokuCli(): Promise<string> {
  ready ??= (async () => {
    if (installedVersion() === HEROKU_CLI_VERSION) return binPath();
    return withLock(async () => {
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
