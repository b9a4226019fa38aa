import { accessSync, constants, readFileSync } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { DynoUser } from "../dyno-user.ts";
import { createCgroup, detectCgroups, removeGroup, SandboxCgroup, sweepCgroups, type CgroupLayout, type CgroupLimits } from "./cgroups.ts";
import { mountInstance, unmountInstance, type InstanceFs } from "./filesystem.ts";
import { sandboxArgv, systemMounts, type LaunchSpec } from "./launch.ts";
import { agentTag, SandboxNetwork, type DynoNetwork } from "./network.ts";
import { findAdoptable, type InstanceRecord } from "./record.ts";

/** The programs a sandbox is made with; all of them run as root with a fixed environment. */
const TOOLS: [string, string][] = [
  ["/usr/bin/bwrap", "bubblewrap"],
  ["/usr/bin/nsenter", "util-linux"],
  ["/usr/bin/setpriv", "util-linux"],
  ["/usr/bin/setsid", "util-linux"],
  ["/usr/sbin/nft", "nftables"],
];

/**
 * What this host lacks to sandbox tenant code, each with the Debian package that brings it;
 * empty when everything is there. The agent refuses to run dynos while this is not empty,
 * unless its operator says `--unsafe-no-sandbox`.
 */
export function sandboxProblems(): string[] {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("the agent is not running as root (it needs to create namespaces, cgroups and mounts)");
  for (const [tool, pkg] of TOOLS) {
    try {
      accessSync(tool, constants.X_OK);
    } catch {
      problems.push(`${tool} is missing (apt-get install ${pkg})`);
    }
  }
  if (!["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].some((p) => executable(p))) problems.push("ip is missing (apt-get install iproute2)");
  if (!detectCgroups()) problems.push("no cgroup memory and pids controllers are mounted under /sys/fs/cgroup");
  if (!/\toverlay$/m.test(readProc("/proc/filesystems"))) problems.push("the kernel has no overlay filesystem");
  return problems;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function readProc(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/** How one sandbox is opened. */
export interface SandboxSpec {
  /** Unique on this host while it runs (a dyno instance, a build id). */
  name: string;
  user: DynoUser;
  limits: CgroupLimits;
  /** Size of the writable layer (/app's changes and /tmp together), in MB. */
  diskMb: number;
  /** The unpacked slug under /app; null gives an empty writable /app. */
  lowerDir: string | null;
}

/** One open sandbox: its cgroup, network and filesystem, until `dispose`. */
export class Sandbox {
  private disposing?: Promise<void>;

  constructor(
    private readonly host: SandboxHost,
    readonly user: DynoUser,
    readonly cgroup: SandboxCgroup,
    readonly network: DynoNetwork,
    readonly fs: InstanceFs,
  ) {}

  /** The address the agent reaches the sandbox's servers at. */
  get address(): string {
    return this.network.address;
  }

  /** The argv that runs `script` inside; the environment is written to its fd 3 (see `envScript`). */
  argv(
    script: string,
    o: Partial<Pick<LaunchSpec, "readOnly" | "readWrite" | "chdir" | "hostname" | "name" | "args" | "terminal" | "statusFile">> = {},
  ): string[] {
    return sandboxArgv(
      {
        cgroupProcs: this.cgroup.procsFiles,
        netns: this.network.netns,
        uid: this.user.uid,
        gid: this.user.gid,
        readOnly: o.readOnly ?? [],
        readWrite: [[this.fs.appDir, "/app"], [this.fs.tmpDir, "/tmp"], ...(o.readWrite ?? [])],
        chdir: o.chdir ?? "/app",
        hostname: o.hostname ?? "dyno",
        shmMb: 64,
        script,
        name: o.name,
        args: o.args,
        terminal: o.terminal,
        statusFile: o.statusFile,
      },
      this.host.system,
    );
  }

  /** The part of an instance record that says where this sandbox is. */
  describe(): InstanceRecord["sandbox"] {
    return { name: this.name, netns: this.network.name, address: this.network.address, user: this.user };
  }

  /** The sandbox's name: its cgroup's, unique on the host while it runs. */
  get name(): string {
    return path.basename(this.cgroup.dirs[0]!);
  }

  /** The tenant's processes inside (not the sandbox's root helpers), wherever they moved. */
  tenantPids(): number[] {
    return this.cgroup.pids().filter((pid) => uidOf(pid) !== 0);
  }

  /** SIGKILL to everything inside, root helpers included. */
  killAll(): void {
    for (const pid of this.cgroup.pids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
  }

  /** Resolves true once no process is left inside, or false after `timeoutMs`. */
  async waitEmpty(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.cgroup.pids().length === 0) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills what is left, then removes the filesystem, the namespace and the cgroup. */
  async dispose(): Promise<void> {
    this.disposing ??= (async () => {
      try {
        this.killAll();
        await this.waitEmpty(5_000);
        // Each step on its own: one that fails must not keep the others from running.
        await unmountInstance(this.fs.dir).catch(() => {});
        await this.host.network.release(this.network).catch(() => {});
        // The kernel may take a moment to let go of the last exited task.
        for (let i = 0; i < 20 && !this.cgroup.remove(); i++) await new Promise((r) => setTimeout(r, 50));
      } finally {
        this.host.forget(this);
      }
    })();
    return this.disposing;
  }
}

function uidOf(pid: number): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(readProc(`/proc/${pid}/status`));
  return m ? Number(m[1]) : null;
}

/**
 * An agent's sandboxes: one cgroup group, one network (bridge, /24, firewall) and a
 * directory of instance filesystems, all removed again by `close`.
 */
export class SandboxHost {
  private readonly sandboxes = new Set<Sandbox>();
  private readonly opening = new Set<Promise<Sandbox>>();
  private closing = false;
  /** Running sandboxes of an earlier agent on this work dir, for the supervisor to adopt. */
  private adopted: { sandbox: Sandbox; record: InstanceRecord }[] = [];
  readonly system = systemMounts();

  private constructor(
    readonly layout: CgroupLayout,
    readonly network: SandboxNetwork,
    readonly group: string,
    readonly instancesDir: string,
  ) {}

  /**
   * Checks the host, removes an earlier run's leftovers and sets up the network. The running
   * dynos of an earlier agent on this work dir (one that was upgraded, or died) are kept with
   * their cgroups, filesystems and network namespaces, for `takeAdopted`; everything else of
   * it is ended and removed.
   */
  static async create(
    workDir: string,
    o: { supernet?: string; allow?: { address: string; port: number }[]; log?: (message: string) => void } = {},
  ): Promise<SandboxHost> {
    const problems = sandboxProblems();
    if (problems.length) throw new Error(`this host cannot sandbox dynos: ${problems.join("; ")}`);
    const layout = detectCgroups()!;
    const tag = agentTag(workDir);
    const group = `dynoplane-${tag}`;
    const instancesDir = path.join(workDir, "sandboxes");
    const log = o.log ?? (() => {});
    let found = await findAdoptable(instancesDir, layout, group, log);
    // Their network first: a namespace that cannot be kept makes its dyno one to end.
    const network = await SandboxNetwork.create(workDir, { ...o, keep: found.map((f) => f.record.sandbox) });
    found = found.filter((f) => {
      if (network.kept.has(f.record.sandbox.netns)) return true;
      log(`not adopting ${f.record.dyno.name} of ${f.record.dyno.app_name}: its network could not be kept`);
      return false;
    });
    // An earlier agent's other sandboxes: nothing of them may run on.
    const busy = sweepCgroups(layout, group, new Set(found.map((f) => f.record.sandbox.name)));
    for (const dir of busy) {
      for (const pid of readProc(path.join(dir, "cgroup.procs")).split("\n").filter(Boolean)) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // Gone.
        }
      }
    }
    const kept = new Set(found.map((f) => f.record.sandbox.name));
    for (let i = 0; i < 50 && busy.length && sweepCgroups(layout, group, kept).length; i++) await new Promise((r) => setTimeout(r, 100));
    const keptDirs = new Set(found.map((f) => f.fs.dir));
    for (const name of await fsp.readdir(instancesDir).catch(() => [] as string[]))
      if (!keptDirs.has(path.join(instancesDir, name))) await unmountInstance(path.join(instancesDir, name));
    const host = new SandboxHost(layout, network, group, instancesDir);
    for (const f of found) {
      const { netns, address, user } = f.record.sandbox;
      const sandbox = new Sandbox(host, user, new SandboxCgroup(layout, f.cgroupDirs), { netns: `/run/netns/${netns}`, name: netns, address }, f.fs);
      host.sandboxes.add(sandbox);
      host.adopted.push({ sandbox, record: f.record });
    }
    return host;
  }

  /** The earlier agent's running sandboxes with their records, once (the supervisor adopts them). */
  takeAdopted(): { sandbox: Sandbox; record: InstanceRecord }[] {
    return this.adopted.splice(0);
  }

  /** Creates a sandbox's cgroup, namespace and filesystem; nothing runs in it yet. */
  openSandbox(spec: SandboxSpec): Promise<Sandbox> {
    if (this.closing) return Promise.reject(new Error("the host's sandboxes are closing"));
    const opening = this.open(spec);
    this.opening.add(opening);
    void opening.catch(() => {}).finally(() => this.opening.delete(opening));
    return opening;
  }

  private async open(spec: SandboxSpec): Promise<Sandbox> {
    const cgroup = createCgroup(this.layout, this.group, spec.name, spec.limits);
    let network: DynoNetwork | undefined;
    try {
      network = await this.network.acquire();
      const fs = await mountInstance(this.instancesDir, spec.name.slice(0, 40), spec.lowerDir, spec.user, spec.diskMb);
      const box = new Sandbox(this, spec.user, cgroup, network, fs);
      this.sandboxes.add(box);
      return box;
    } catch (err) {
      if (network) await this.network.release(network);
      cgroup.remove();
      throw err;
    }
  }

  /** Called by a sandbox once it is gone. */
  forget(box: Sandbox): void {
    this.sandboxes.delete(box);
  }

  /** Ends every sandbox, those still being opened too, and removes the network. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.opening]);
    await Promise.allSettled([...this.sandboxes].map((b) => b.dispose()));
    // Whatever a failed dispose left mounted goes too: nothing may outlive the agent.
    for (const name of await fsp.readdir(this.instancesDir).catch(() => [] as string[]))
      await unmountInstance(path.join(this.instancesDir, name)).catch(() => {});
    await this.network.close();
    sweepCgroups(this.layout, this.group);
    removeGroup(this.layout, this.group);
  }
}
