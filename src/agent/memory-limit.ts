import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Where cgroup v1's memory controller is mounted; the agent keeps its dynos under `dynoplane/`. */
const MEMORY_ROOT = "/sys/fs/cgroup/memory";

/**
 * Heroku's memory quotas: above the dyno size's memory a dyno logs R14 and keeps running;
 * at twice that it is killed (R15). The kernel enforces the hard limit through a cgroup.
 */
export const HARD_LIMIT_FACTOR = 2;

/** One dyno instance's memory cgroup. */
export interface MemoryCgroup {
  /** The file a process writes its pid to, to join. */
  procsFile: string;
  usageBytes(): number;
  /** Whether the kernel has killed a process here for exceeding the limit. */
  oomKilled(): boolean;
  remove(): void;
}

/** Whether this agent can put dynos in memory cgroups (root, cgroup v1 memory controller). */
export function memoryCgroupsAvailable(): boolean {
  return process.getuid?.() === 0 && existsSync(path.join(MEMORY_ROOT, "cgroup.procs"));
}

/** A fresh memory cgroup with a hard limit of HARD_LIMIT_FACTOR × quotaMb, or null where there are none. */
export function createMemoryCgroup(name: string, quotaMb: number): MemoryCgroup | null {
  if (!memoryCgroupsAvailable()) return null;
  const dir = path.join(MEMORY_ROOT, "dynoplane", name);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(quotaMb * HARD_LIMIT_FACTOR * 1024 * 1024));
    // Without swap accounting the limit covers RAM only; where it exists, swap is capped too.
    const memsw = path.join(dir, "memory.memsw.limit_in_bytes");
    if (existsSync(memsw)) writeFileSync(memsw, String(quotaMb * HARD_LIMIT_FACTOR * 1024 * 1024));
  } catch {
    return null;
  }
  const read = (file: string) => {
    try {
      return readFileSync(path.join(dir, file), "utf8");
    } catch {
      return "";
    }
  };
  return {
    procsFile: path.join(dir, "cgroup.procs"),
    usageBytes: () => Number(read("memory.usage_in_bytes").trim()) || 0,
    oomKilled: () => Number(/oom_kill (\d+)/.exec(read("memory.oom_control"))?.[1] ?? 0) > 0 || Number(read("memory.failcnt").trim()) > 0,
    remove: () => {
      try {
        rmdirSync(dir);
      } catch {
        // Still holding a process for a moment; the next agent start clears leftovers.
      }
    },
  };
}

/** Removes empty dyno cgroups an earlier agent left behind (their processes are gone). */
export function sweepMemoryCgroups(): void {
  const dir = path.join(MEMORY_ROOT, "dynoplane");
  if (!memoryCgroupsAvailable() || !existsSync(dir)) return;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    if (!name.isDirectory()) continue;
    try {
      if (!readFileSync(path.join(dir, name.name, "cgroup.procs"), "utf8").trim()) rmdirSync(path.join(dir, name.name));
    } catch {
      // Busy or already gone.
    }
  }
}
