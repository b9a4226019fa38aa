import { readdirSync, readFileSync } from "node:fs";

/** CPU time (user + system, ms) a process has used so far, all its threads included; 0 when it is gone. */
export function cpuMs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = 100; // USER_HZ on Linux
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks;
  } catch {
    return 0;
  }
}

/** CPU time (ms) of a process and every live process below it (nginx's workers under its master). */
export function treeCpuMs(rootPid: number | undefined): number {
  if (!rootPid) return 0;
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const walk = (pid: number): number => cpuMs(pid) + (children.get(pid) ?? []).reduce((sum, child) => sum + walk(child), 0);
  return walk(rootPid);
}
