import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * How a host mounts cgroups: v1 has one hierarchy per controller (`<root>/memory`,
 * `<root>/pids`, `<root>/cpu`), v2 one unified hierarchy with `cgroup.controllers` at its root.
 */
export type CgroupLayout = { version: 1; root: string; memory: string; pids: string; cpu: string } | { version: 2; root: string };

/**
 * Heroku's memory quotas: above the dyno size's memory a dyno logs R14 and keeps running;
 * at twice that it is killed (R15). The kernel enforces the hard limit through the cgroup.
 */
export const HARD_LIMIT_FACTOR = 2;

/** What one sandbox's cgroup limits. */
export interface CgroupLimits {
  /** The quota; the kernel's hard limit is HARD_LIMIT_FACTOR times this. */
  memoryMb: number;
  /** At most this many processes and threads (a fork bomb stops here). */
  pids: number;
  /** CPU weight relative to other sandboxes, v2's scale: 100 is one share. */
  cpuWeight: number;
  /** At most this many CPUs' time, whatever else is idle (a service's hard cap; sandboxes share by weight). */
  cpus?: number;
}

/** The cgroup layout of this host, or null where the memory and pids controllers are not both there. */
export function detectCgroups(root = "/sys/fs/cgroup"): CgroupLayout | null {
  const v1 = { memory: path.join(root, "memory"), pids: path.join(root, "pids"), cpu: path.join(root, "cpu") };
  if (existsSync(path.join(v1.memory, "cgroup.procs")) && existsSync(path.join(v1.pids, "cgroup.procs"))) {
    return { version: 1, root, ...v1, cpu: existsSync(path.join(v1.cpu, "cgroup.procs")) ? v1.cpu : path.join(root, "cpu,cpuacct") };
  }
  const controllers = readText(path.join(root, "cgroup.controllers"));
  if (controllers !== null) {
    const have = new Set(controllers.trim().split(/\s+/));
    if (have.has("memory") && have.has("pids")) return { version: 2, root };
  }
  return null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

/** The scheduler period a CPU cap is stated in (the kernel's default). */
const CPU_PERIOD_US = 100_000;

/** v1's cpu.shares for a v2 weight (1024 shares is the kernel's default, as weight 100 is). */
export function sharesForWeight(weight: number): number {
  return Math.max(2, Math.round((weight * 1024) / 100));
}

/** The files to write and their contents for one sandbox's limits, per directory. Pure. */
export function limitFiles(layout: CgroupLayout, group: string, name: string, limits: CgroupLimits): { dir: string; files: [string, string][] }[] {
  const hard = String(limits.memoryMb * HARD_LIMIT_FACTOR * 1024 * 1024);
  if (layout.version === 2) {
    const dir = path.join(layout.root, group, name);
    return [
      {
        dir,
        files: [
          ["memory.max", hard],
          ["memory.swap.max", "0"],
          ["pids.max", String(limits.pids)],
          ["cpu.weight", String(limits.cpuWeight)],
          ...(limits.cpus ? [["cpu.max", `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`] as [string, string]] : []),
        ],
      },
    ];
  }
  return [
    {
      dir: path.join(layout.memory, group, name),
      files: [
        ["memory.limit_in_bytes", hard],
        ["memory.memsw.limit_in_bytes", hard],
      ],
    },
    { dir: path.join(layout.pids, group, name), files: [["pids.max", String(limits.pids)]] },
    {
      dir: path.join(layout.cpu, group, name),
      files: [
        ["cpu.shares", String(sharesForWeight(limits.cpuWeight))],
        ...(limits.cpus
          ? ([
              ["cpu.cfs_period_us", String(CPU_PERIOD_US)],
              ["cpu.cfs_quota_us", String(Math.round(limits.cpus * CPU_PERIOD_US))],
            ] as [string, string][])
          : []),
      ],
    },
  ];
}

/** Lets the group's children use memory, pids and cpu (v2 hands controllers down explicitly). */
function delegateV2(root: string, group: string): void {
  for (const dir of [root, path.join(root, group)]) {
    mkdirSync(dir, { recursive: true });
    const available = new Set((readText(path.join(dir, "cgroup.controllers")) ?? "").trim().split(/\s+/));
    const wanted = ["memory", "pids", "cpu"].filter((c) => available.has(c));
    if (wanted.length) writeFileSync(path.join(dir, "cgroup.subtree_control"), wanted.map((c) => `+${c}`).join(" "));
  }
}

/** One sandbox's cgroup (a directory per v1 hierarchy, or one v2 directory). */
export class SandboxCgroup {
  constructor(
    readonly layout: CgroupLayout,
    /** Every directory a process joins, the memory one first. */
    readonly dirs: string[],
  ) {}

  /** The `cgroup.procs` files a process writes its pid to, to join. */
  get procsFiles(): string[] {
    return this.dirs.map((d) => path.join(d, "cgroup.procs"));
  }

  /** The pids of every process inside, however it detached itself. */
  pids(): number[] {
    const text = readText(path.join(this.dirs[this.dirs.length - 1]!, "cgroup.procs")) ?? "";
    return text.split("\n").filter(Boolean).map(Number);
  }

  usageBytes(): number {
    const file = this.layout.version === 2 ? "memory.current" : "memory.usage_in_bytes";
    return Number((readText(path.join(this.dirs[0]!, file)) ?? "").trim()) || 0;
  }

  /** The memory controller's statistics (`memory.stat`), by name, in bytes or pages. */
  memoryStat(): Record<string, number> {
    const stat: Record<string, number> = {};
    for (const line of (readText(path.join(this.dirs[0]!, "memory.stat")) ?? "").split("\n")) {
      const [key, value] = line.split(" ");
      if (key && value) stat[key] = Number(value) || 0;
    }
    return stat;
  }

  /** Bytes of swap in use (v2 counts them apart; v1's memory.stat has them). */
  swapBytes(stat = this.memoryStat()): number {
    if (this.layout.version === 2) return Number((readText(path.join(this.dirs[0]!, "memory.swap.current")) ?? "").trim()) || 0;
    return stat.total_swap ?? stat.swap ?? 0;
  }

  /** The ids of every thread inside (what a load average counts). */
  threads(): number[] {
    const file = this.layout.version === 2 ? "cgroup.threads" : "tasks";
    const text = readText(path.join(this.dirs[this.dirs.length - 1]!, file)) ?? "";
    return text.split("\n").filter(Boolean).map(Number);
  }

  /** Whether the kernel has killed a process here for exceeding the memory limit. */
  oomKilled(): boolean {
    if (this.layout.version === 2) return Number(/oom_kill (\d+)/.exec(readText(path.join(this.dirs[0]!, "memory.events")) ?? "")?.[1] ?? 0) > 0;
    const control = readText(path.join(this.dirs[0]!, "memory.oom_control")) ?? "";
    return Number(/oom_kill (\d+)/.exec(control)?.[1] ?? 0) > 0 || Number((readText(path.join(this.dirs[0]!, "memory.failcnt")) ?? "").trim()) > 0;
  }

  /** Removes the directories; true when all are gone (a directory with processes stays). */
  remove(): boolean {
    let all = true;
    for (const dir of this.dirs) {
      try {
        rmdirSync(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") all = false;
      }
    }
    return all;
  }
}

/**
 * A fresh cgroup `<group>/<name>` with the sandbox's memory, pids and CPU limits. A limit file
 * the kernel does not offer (swap accounting off) is skipped; the memory and pids limits are not.
 */
export function createCgroup(layout: CgroupLayout, group: string, name: string, limits: CgroupLimits): SandboxCgroup {
  if (layout.version === 2) delegateV2(layout.root, group);
  const plan = limitFiles(layout, group, name, limits);
  for (const { dir, files } of plan) {
    mkdirSync(dir, { recursive: true });
    for (const [file, value] of files) {
      const target = path.join(dir, file);
      const optional = file.includes("swap") || file.includes("memsw") || file.startsWith("cpu.");
      if (optional && !existsSync(target) && existsSync(path.join(dir, "cgroup.procs"))) continue;
      try {
        writeFileSync(target, value);
      } catch (err) {
        if (!optional) throw new Error(`could not set ${target}: ${(err as Error).message}`);
      }
    }
  }
  return new SandboxCgroup(layout, cgroupDirs(layout, group, name));
}

/** The directories of the sandbox cgroup `<group>/<name>`, in SandboxCgroup's order. Pure. */
export function cgroupDirs(layout: CgroupLayout, group: string, name: string): string[] {
  if (layout.version === 2) return [path.join(layout.root, group, name)];
  // In v1 the memory directory comes first, the pids one last (it lists members).
  return [layout.memory, layout.cpu, layout.pids].map((root) => path.join(root, group, name));
}

/**
 * Removes the empty cgroups an earlier run of this group left behind; returns those still
 * holding processes, except the sandboxes named in `keep` (adopted by this run).
 */
export function sweepCgroups(layout: CgroupLayout, group: string, keep: ReadonlySet<string> = new Set()): string[] {
  const parents = layout.version === 2 ? [path.join(layout.root, group)] : [layout.memory, layout.cpu, layout.pids].map((r) => path.join(r, group));
  const busy: string[] = [];
  for (const parent of parents) {
    let names: string[];
    try {
      names = readdirSync(parent, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      continue;
    }
    for (const name of names) {
      if (keep.has(name)) continue;
      const dir = path.join(parent, name);
      if ((readText(path.join(dir, "cgroup.procs")) ?? "").trim()) busy.push(dir);
      else {
        try {
          rmdirSync(dir);
        } catch {
          // Gone already, or busy after all.
        }
      }
    }
  }
  return busy;
}

/** Removes the group's own directories once its sandboxes are gone (an agent's clean stop). */
export function removeGroup(layout: CgroupLayout, group: string): void {
  const dirs = layout.version === 2 ? [path.join(layout.root, group)] : [layout.memory, layout.cpu, layout.pids].map((r) => path.join(r, group));
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      // Still holding a sandbox, or never made.
    }
  }
}
