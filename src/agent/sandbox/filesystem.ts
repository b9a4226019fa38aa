import fs from "node:fs/promises";
import path from "node:path";
import type { DynoUser } from "../dyno-user.ts";
import { run } from "./run.ts";

/**
 * One sandbox's writable filesystem: a tmpfs of the size's disk limit holding the overlay's
 * upper layer and the private /tmp, and the overlay itself, which shows the app's unpacked
 * slug (read-only underneath) as a writable /app. Every start gets a fresh one, so a dyno's
 * filesystem is ephemeral; writes past the limit fail with ENOSPC and the host's disk is
 * untouched. Its pages count against the sandbox's memory cgroup, as they are the dyno's.
 */
export interface InstanceFs {
  /** The mount point of the tmpfs (root-only). */
  dir: string;
  /** The host path of the merged /app. */
  appDir: string;
  /** The host path of the sandbox's /tmp. */
  tmpDir: string;
  /**
   * The agent's own directory beside them (root's, never mounted into the sandbox): the
   * dyno's output FIFOs, its exit status and the record an agent adopts it by.
   */
  ctlDir: string;
}

/** The FIFOs a dyno's stdout and stderr are, in its control directory. */
export const OUTPUT_FIFOS = ["stdout", "stderr"] as const;

/** Mounts a fresh instance filesystem over `lowerDir` below `parent`; `diskMb` bounds what can be written. */
export async function mountInstance(parent: string, prefix: string, lowerDir: string | null, user: DynoUser, diskMb: number): Promise<InstanceFs> {
  await fs.mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await fs.mkdtemp(path.join(parent, `${prefix}-`));
  try {
    // Two mounts, the directories between them made here: every step is the agent's (fixed arguments, ROOT_ENV).
    await run("mount", ["-t", "tmpfs", "-o", `size=${Math.max(1, Math.floor(diskMb))}m,mode=0700,nosuid,nodev`, "tmpfs", dir]);
    for (const [name, mode] of [
      ["upper", 0o755],
      ["app", 0o755],
      ["work", 0o700],
      ["tmp", 0o1777],
      ["ctl", 0o700],
    ] as const) {
      await fs.mkdir(path.join(dir, name), { mode });
      await fs.chmod(path.join(dir, name), mode);
    }
    await fs.chown(path.join(dir, "upper"), user.uid, user.gid);
    await fs.chown(path.join(dir, "app"), user.uid, user.gid);
    if (lowerDir)
      await run("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lowerDir},upperdir=${dir}/upper,workdir=${dir}/work`, path.join(dir, "app")]);
    else await run("mount", ["--bind", path.join(dir, "upper"), path.join(dir, "app")]);
    await run("mkfifo", ["-m", "0600", ...OUTPUT_FIFOS.map((f) => path.join(dir, "ctl", f))]);
  } catch (err) {
    await unmountInstance(dir).catch(() => {});
    throw err;
  }
  return instanceFs(dir);
}

/** The paths of the instance filesystem mounted at `dir`. Pure. */
export function instanceFs(dir: string): InstanceFs {
  return { dir, appDir: path.join(dir, "app"), tmpDir: path.join(dir, "tmp"), ctlDir: path.join(dir, "ctl") };
}

/** Unmounts an instance filesystem and removes its mount point (whatever of it exists). */
export async function unmountInstance(dir: string): Promise<void> {
  const mounts = await mountsBelow(dir);
  // Deepest first: the overlay sits on the tmpfs.
  for (const m of mounts.sort((a, b) => b.length - a.length)) {
    try {
      await run("umount", [m]);
    } catch (err) {
      // Someone else (the sandbox's own disposal, a sweep) may have unmounted it meanwhile.
      if (!(await mountsBelow(m)).includes(m)) continue;
      await run("umount", ["-l", m]).catch(async (lazyErr: unknown) => {
        if ((await mountsBelow(m)).includes(m)) throw lazyErr ?? err;
      });
    }
  }
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const info = await fs.readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const root = path.resolve(dir);
  const out: string[] = [];
  for (const line of info.split("\n")) {
    // Field 5 is the mount point, with spaces and such escaped as octal.
    const point = line.split(" ")[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (point && (point === root || point.startsWith(`${root}/`))) out.push(point);
  }
  return out;
}
