import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import path from "node:path";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding an install lock: a file created exclusively with the holder's pid, so
 * parallel processes (test workers) install a tool once. A lock whose holder is gone, or
 * that is older than `staleMs`, is broken; waiting longer than `staleMs` fails.
 */
export async function withInstallLock<T>(lockPath: string, staleMs: number, fn: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(lockPath), { recursive: true });
  const deadline = Date.now() + staleMs;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (lockIsAbandoned(lockPath, staleMs)) {
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

function lockIsAbandoned(lockPath: string, staleMs: number): boolean {
  try {
    const pid = Number(readFileSync(lockPath, "utf8"));
    if (Date.now() - statSync(lockPath).mtimeMs > staleMs) return true;
    if (!pid) return false; // being written right now
    process.kill(pid, 0);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === "ESRCH" || code === "ENOENT";
  }
}
