import { readFileSync } from "node:fs";
import type { SandboxCgroup } from "./sandbox/cgroups.ts";

/** What a dyno uses, as Heroku's runtime metrics report it (memory in MB, pages as counts). */
export interface DynoUsage {
  rssMb: number;
  cacheMb: number;
  swapMb: number;
  /** RSS plus swap, Heroku's `memory_total`. */
  totalMb: number;
  /** What the kernel's memory limit counts (page cache included): R14 compares it with the quota. */
  chargedMb: number;
  pgpgin: number;
  pgpgout: number;
  load1m: number;
  load5m: number;
  load15m: number;
}

/** How often a dyno is sampled: the kernel's own load-average period. */
export const USAGE_SAMPLE_MS = 5_000;

// The kernel's decay factors for a 5 s sample over 1, 5 and 15 minutes (kernel/sched/loadavg.c).
const DECAY = [Math.exp(-5 / 60), Math.exp(-5 / 300), Math.exp(-5 / 900)] as const;

const MB = 1024 * 1024;

/**
 * A dyno's load average computed as the kernel computes the host's, over the dyno's own
 * threads only: every 5 s, the number of them running or waiting to run (state R) or in
 * uninterruptible sleep (D), decayed over 1, 5 and 15 minutes.
 */
export class LoadAverage {
  readonly values = [0, 0, 0];

  add(active: number): void {
    for (let i = 0; i < 3; i++) this.values[i] = this.values[i]! * DECAY[i]! + active * (1 - DECAY[i]!);
  }
}

/** Threads of `tids` that are runnable or in uninterruptible sleep (from /proc/<tid>/stat). */
export function activeThreads(tids: number[]): number {
  let n = 0;
  for (const tid of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${tid}/stat`, "latin1");
    } catch {
      continue; // it ended meanwhile
    }
    // The state follows the command name in parentheses, which may itself contain ") ".
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    if (state === "R" || state === "D") n++;
  }
  return n;
}

/**
 * Samples one dyno's cgroup: memory from `memory.stat` (v1's `total_*` counters include the
 * dyno's child groups; v2's are hierarchical already) and the load from its threads.
 */
export class UsageSampler {
  private readonly load = new LoadAverage();
  latest: DynoUsage | null = null;

  constructor(private readonly cgroup: SandboxCgroup) {}

  sample(): DynoUsage {
    const stat = this.cgroup.memoryStat();
    const v1 = this.cgroup.layout.version === 1;
    const rss = v1 ? (stat.total_rss ?? stat.rss ?? 0) + (stat.total_mapped_file ?? 0) : (stat.anon ?? 0);
    const cache = v1 ? (stat.total_cache ?? stat.cache ?? 0) : (stat.file ?? 0);
    const swap = this.cgroup.swapBytes(stat);
    // v2 has no page-in/out counters; its faults are the nearest measure.
    const pgpgin = v1 ? (stat.total_pgpgin ?? stat.pgpgin ?? 0) : (stat.pgfault ?? 0);
    const pgpgout = v1 ? (stat.total_pgpgout ?? stat.pgpgout ?? 0) : 0;
    this.load.add(activeThreads(this.cgroup.threads()));
    const [load1m, load5m, load15m] = this.load.values as [number, number, number];
    this.latest = {
      rssMb: rss / MB,
      cacheMb: cache / MB,
      swapMb: swap / MB,
      totalMb: (rss + swap) / MB,
      chargedMb: this.cgroup.usageBytes() / MB,
      pgpgin,
      pgpgout,
      load1m,
      load5m,
      load15m,
    };
    return this.latest;
  }
}
