import { existsSync, readFileSync, writeFileSync } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { DESIRED_DYNO } from "../../protocol/host.ts";
import { type CgroupLayout, cgroupDirs } from "./cgroups.ts";
import { instanceFs, mountsBelow, type InstanceFs } from "./filesystem.ts";

/**
 * What an agent knows of a running dyno that the next agent on the host needs to adopt it:
 * written to the instance's control directory when the dyno starts. It holds no config var
 * (a restart takes those from the control plane's desired set) and lives where only root
 * can read or write it.
 */
export const INSTANCE_RECORD = z.object({
  version: z.literal(1),
  dyno: DESIRED_DYNO.omit({ env: true }),
  port: z.number().int().min(1).max(65535),
  /** The sandbox's monitor: the root shell that writes the exit status (see launch.ts). */
  pid: z.number().int().positive(),
  started_at: z.number(),
  /** The release of the agent that started it. */
  agent_version: z.string(),
  sandbox: z.object({
    name: z.string().regex(/^[A-Za-z0-9-]+$/),
    netns: z.string().regex(/^[A-Za-z0-9-]+$/),
    address: z.string().regex(/^\d+\.\d+\.\d+\.\d+$/),
    user: z.object({ name: z.string(), uid: z.number().int().positive(), gid: z.number().int().positive() }),
  }),
});
export type InstanceRecord = z.infer<typeof INSTANCE_RECORD>;

const RECORD_FILE = "record.json";
/** The monitor's exit status file, written once the sandbox's command is over. */
export const STATUS_FILE = "status";

/** Writes the record of a dyno that has just started (root-only, in its control directory). */
export function writeRecord(ctlDir: string, record: InstanceRecord): void {
  writeFileSync(path.join(ctlDir, RECORD_FILE), JSON.stringify(record), { mode: 0o600 });
}

/** The exit status the monitor wrote, or null when it wrote none (it was killed). */
export function readStatus(ctlDir: string): number | null {
  try {
    const text = readFileSync(path.join(ctlDir, STATUS_FILE), "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** A running instance an earlier agent left, checked against the host's own state. */
export interface Adoptable {
  record: InstanceRecord;
  fs: InstanceFs;
  cgroupDirs: string[];
}

/**
 * The instances under `instancesDir` that can be adopted: a well-formed record, its
 * filesystem still mounted, its monitor alive and a member of the sandbox's own cgroup (so
 * a record can never point the agent at a process of anyone else's), no exit status
 * written yet, and its network namespace still there. Anything else is left for the sweep.
 */
export async function findAdoptable(instancesDir: string, layout: CgroupLayout, group: string, log: (m: string) => void): Promise<Adoptable[]> {
  const out: Adoptable[] = [];
  for (const name of await fsp.readdir(instancesDir).catch(() => [] as string[])) {
    const fs = instanceFs(path.join(instancesDir, name));
    let record: InstanceRecord;
    try {
      record = INSTANCE_RECORD.parse(JSON.parse(readFileSync(path.join(fs.ctlDir, RECORD_FILE), "utf8")));
    } catch {
      continue; // a build's sandbox, one that never started, or a record that is not one
    }
    const dirs = cgroupDirs(layout, group, record.sandbox.name);
    const members = readLines(path.join(dirs[dirs.length - 1]!, "cgroup.procs"));
    const why = !(await mountsBelow(fs.dir)).includes(fs.dir)
      ? "its filesystem is gone"
      : !members.includes(String(record.pid))
        ? "its monitor is not running in its cgroup"
        : existsSync(path.join(fs.ctlDir, STATUS_FILE))
          ? "it has exited"
          : !existsSync(path.join("/run/netns", record.sandbox.netns))
            ? "its network namespace is gone"
            : null;
    if (why) log(`not adopting ${record.dyno.name} of ${record.dyno.app_name} (instance ${record.dyno.instance}): ${why}`);
    else out.push({ record, fs, cgroupDirs: dirs });
  }
  return out;
}

function readLines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
