import { lstatSync, readlinkSync } from "node:fs";
import path from "node:path";

/** What a sandboxed command gets: who runs it, where, and what it can see. */
export interface LaunchSpec {
  /** The cgroup.procs files the first (root) shell writes its pid to, before anything else runs. */
  cgroupProcs: string[];
  /** The network namespace to join (`/run/netns/...`). */
  netns: string;
  uid: number;
  gid: number;
  /** [host path, sandbox path] pairs mounted read-only, after the system directories. */
  readOnly: [string, string][];
  /** [host path, sandbox path] pairs mounted read-write. */
  readWrite: [string, string][];
  chdir: string;
  hostname: string;
  /** The size of /dev/shm, in MB. */
  shmMb: number;
  /** The tenant's shell script, run by /bin/sh after the environment from fd 3 is applied. */
  script: string;
  /** $0 of that shell. */
  name?: string;
  /** $1 … of that shell. */
  args?: string[];
  /**
   * stdin is a pseudo-terminal of the dyno's own (`heroku run`): the tenant's shell leads a
   * new session with it as the controlling terminal (`setsid --ctty`), instead of bwrap's
   * terminal-less `--new-session` (whose point, keeping a sandbox off its caller's
   * terminal, holds anyway: this terminal is the sandbox's alone).
   */
  terminal?: boolean;
  /**
   * Where the root shell that joined the cgroups writes the exit status once the command is
   * over. With it, that shell stays (a monitor, in the sandbox's cgroup, with no tenant
   * environment) instead of exec'ing the command, so the status is known to an agent that
   * adopted the dyno after the one that started it is gone.
   */
  statusFile?: string;
}

/** The system directories every sandbox sees read-only: the host's userland, not its data. */
const SYSTEM_DIRS = ["/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

/**
 * bwrap arguments for the host's system directories: a directory is bound read-only, a
 * symlink (merged /usr) is recreated, a missing one is skipped. The agent's own Node.js is
 * added when it lives outside /usr, because buildpacks and Node.js apps run it.
 */
export function systemMounts(nodePrefix = path.dirname(path.dirname(process.execPath))): string[] {
  const args: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push("--symlink", readlinkSync(dir), dir);
    else if (st.isDirectory()) args.push("--ro-bind", dir, dir);
  }
  if (!SYSTEM_DIRS.some((d) => nodePrefix === d || nodePrefix.startsWith(`${d}/`))) args.push("--ro-bind", nodePrefix, nodePrefix);
  return args;
}

/**
 * `--dir` for every ancestor of the given sandbox paths, mode 0755: bwrap running as root
 * makes missing parents 0700, which the tenant's uid could not pass through. Pure.
 */
export function parentDirs(dests: string[]): string[] {
  const dirs = new Set<string>();
  for (const dest of dests) for (let p = path.posix.dirname(dest); p !== "/" && p !== "."; p = path.posix.dirname(p)) dirs.add(p);
  return [...dirs].sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b)).flatMap((d) => ["--perms", "0755", "--dir", d]);
}

/**
 * The environment as shell code that the tenant's own shell evaluates: single-quoted values
 * (nothing in them is expanded), names a shell can export (others are skipped). Pure.
 */
export function envScript(env: Record<string, string>): string {
  let out = "";
  for (const [name, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || value.includes("\0")) continue;
    out += `export ${name}='${value.replaceAll("'", `'\\''`)}'\n`;
  }
  return out;
}

/**
 * The first lines of every sandboxed shell: the environment arrives on fd 3 as shell code
 * and is applied here, inside the sandbox, as the tenant's uid and after no_new_privs; so
 * no root process ever runs with a tenant's PATH, LD_PRELOAD or BASH_ENV. `cat` is named by
 * its full path because PATH is the tenant's from the next line on.
 */
export const APPLY_ENV = 'eval "$(/bin/cat <&3)" || exit 1\nexec 3<&-\n';

/** Joins the cgroups named by the first $1 arguments, then runs the rest. */
const JOIN = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"';

/** JOIN that stays: runs the rest as its child and writes its exit status to the file $1. */
const MONITOR = 'f=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; "$@"; s=$?; echo "$s" > "$f"; exit "$s"';

/**
 * The argv that runs `spec.script` sandboxed. Every process until the last exec is root with
 * a fixed environment and fixed paths: a root shell joins the cgroups, nsenter enters the
 * network namespace, bwrap makes the PID, mount, IPC and UTS namespaces (and kills the whole
 * PID namespace when the command ends), setpriv drops to the tenant's uid with no
 * supplementary groups, no capabilities and no_new_privs; then the tenant's shell runs.
 */
export function sandboxArgv(spec: LaunchSpec, system = systemMounts()): string[] {
  const bwrap = [
    "/usr/bin/bwrap",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--unshare-cgroup-try",
    "--die-with-parent",
    ...(spec.terminal ? [] : ["--new-session"]),
    "--hostname",
    spec.hostname,
    ...system,
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--size",
    String(spec.shmMb * 1024 * 1024),
    "--tmpfs",
    "/dev/shm",
    // Read-write first, so that a read-only path below one (a buildpack under /tmp) stays visible.
    ...parentDirs(spec.readWrite.map(([, dest]) => dest).concat("/var/tmp")),
    ...spec.readWrite.flatMap(([src, dest]) => ["--bind", src, dest]),
    ...parentDirs(spec.readOnly.map(([, dest]) => dest)),
    ...spec.readOnly.flatMap(([src, dest]) => ["--ro-bind", src, dest]),
    "--symlink",
    "../tmp",
    "/var/tmp",
    "--chdir",
    spec.chdir,
    "--",
  ];
  const drop = [
    "/usr/bin/setpriv",
    `--reuid=${spec.uid}`,
    `--regid=${spec.gid}`,
    "--clear-groups",
    "--no-new-privs",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
  ];
  const shell = [
    ...(spec.terminal ? ["/usr/bin/setsid", "--ctty"] : []),
    "/bin/sh",
    "-c",
    APPLY_ENV + spec.script,
    spec.name ?? "sandbox",
    ...(spec.args ?? []),
  ];
  const enter = ["/usr/bin/nsenter", `--net=${spec.netns}`, "--"];
  const join = spec.statusFile ? [MONITOR, "monitor", spec.statusFile] : [JOIN, "join"];
  return ["/bin/sh", "-c", ...join, String(spec.cgroupProcs.length), ...spec.cgroupProcs, ...enter, ...bwrap, ...drop, ...shell];
}
