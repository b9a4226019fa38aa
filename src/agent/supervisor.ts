import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Duplex } from "node:stream";
import { type DesiredDyno, type DynoErrorCode, type DynoMetrics, isOneOffType, type ObservedDyno, RENDEZVOUS_GREETING, sizeLimits } from "../protocol/host.ts";
import { appUser, assertReachable, ensureDynoUser, type DynoUser } from "./dyno-user.ts";
import { type AttachedSession, DynoProcess, type DynoState } from "./dyno-process.ts";
import type { LogSink } from "./log-buffer.ts";
import { killProcessesUnder, pickFreePort } from "./process-group.ts";
import { diffDynos, HEROKU_BACKOFF, restartDelayMs, type BackoffSchedule, type DynoDiff, type RunningDynoSummary } from "./reconcile.ts";
import type { Sandbox, SandboxHost } from "./sandbox/index.ts";
import type { InstanceRecord } from "./sandbox/record.ts";
import { removeInstanceDir, SlugUnpacker, unpackSlug } from "./slug.ts";

/** How the supervisor runs dynos. */
export interface SupervisorOptions {
  /** Instance directories live in `<workDir>/dynos`. */
  workDir: string;
  sink: LogSink;
  /** The local path of a dyno's slug archive, downloading it first when needed. */
  slugPath: (dyno: DesiredDyno) => Promise<string>;
  /** Who dynos run as; by default the `dyno` user when root, else the agent's own user. */
  user?: DynoUser | null;
  /** Where dynos run; null runs them as bare processes (only when the operator said so). */
  sandboxes: SandboxHost | null;
  /** Overrides every dyno's boot_timeout_s (R10). */
  bootTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL; Heroku's is 30 s. */
  stopGraceMs?: number;
  /** How long a replaced web instance outlives its successor's start (HANDOFF_MS). */
  handoffMs?: number;
  backoff?: BackoffSchedule;
  /** Called after any dyno's state changes, so the control plane can hear of it at once. */
  onChange?: () => void;
  /** How long an attached one-off dyno waits for its client before it ends (the token's 60 s). */
  attachTimeoutMs?: number;
}

/** What a dyno waits for its client for, by default: as long as its rendezvous token lives. */
export const ATTACH_TIMEOUT_MS = 60_000;

/**
 * How long a replaced web instance keeps running after its successor is up and routed to:
 * a request the proxy sent its way a moment before the switch still finds it there (once
 * its sandbox is gone, such a request would find no one to answer, not even a refusal).
 */
export const HANDOFF_MS = 1_000;

/** One run of a dyno: its unpack directory and process. */
interface Instance {
  dyno: DesiredDyno;
  proc?: DynoProcess;
  /** Without a sandbox: the directory the slug was unpacked into. */
  dir?: string;
  sandbox?: Sandbox;
  retired: boolean;
  /** A restart's old instance: it ends without a state line of its own (the dyno goes on). */
  replaced?: boolean;
  /** Settles when the unpack-and-spawn started by `launch` is over, whichever way. */
  launching?: Promise<void>;
  /** Settles when the directory is deleted; every path that ends an instance awaits the same one. */
  cleaning?: Promise<void>;
  /** One-off dynos: ends the instance when its time to live is over. */
  ttlTimer?: NodeJS.Timeout;
  /** A replaced web instance: retires it once its successor has taken over (HANDOFF_MS). */
  handoffTimer?: NodeJS.Timeout;
}

/** Everything the supervisor knows about one dyno id. */
interface Slot {
  /** The desired dyno; its `instance` is what the supervisor converges on. */
  dyno: DesiredDyno;
  current?: Instance;
  /** The replaced web instance, serving until `current` is up. */
  previous?: Instance;
  state: DynoState;
  exitCode: number | null;
  crashes: number;
  /**
   * A crash the control plane has not yet been told of: the first restart is immediate, so
   * the dyno may be starting again before the next report, which still says it crashed.
   */
  unreportedCrash?: { exitCode: number | null };
  /** Since the last metrics report: process starts after the first, and Heroku errors. */
  restarts: number;
  errors: Set<DynoErrorCode>;
  restartTimer?: NodeJS.Timeout;
  /** Attached one-off dynos: whether a client came (only one ever does), and the wait for it. */
  attached?: boolean;
  attachTimer?: NodeJS.Timeout;
  /**
   * Adopted from an earlier agent: its config vars are not known here until the control
   * plane's desired set names it again, so a crash waits for that before the restart.
   */
  awaitingDesired?: boolean;
  restartWhenDesired?: boolean;
}

/** What `inspect` reveals about a dyno, for operators and tests. */
export type DynoInfo = { state: DynoState; instance: string; pid?: number; port?: number; address?: string; dir?: string; sandbox?: Sandbox; crashes: number };

/** Makes a supervisor: resolves the dyno user and checks it can reach the work dir. */
export async function createSupervisor(o: SupervisorOptions): Promise<Supervisor> {
  const user = o.user === undefined ? await ensureDynoUser() : o.user;
  const dynosDir = path.join(o.workDir, "dynos");
  await fs.mkdir(dynosDir, { recursive: true, mode: 0o711 });
  await fs.chmod(dynosDir, 0o711); // dynos may pass through, not list their neighbours
  if (!o.sandboxes) await assertReachable(dynosDir, user);
  // Dynos run without a sandbox are never adopted: leftovers are ended, and desired dynos
  // start afresh. Sandboxed ones an earlier agent left running are adopted.
  await killProcessesUnder(dynosDir);
  for (const name of await fs.readdir(dynosDir)) await removeInstanceDir(path.join(dynosDir, name));
  const supervisor = new Supervisor(o, user, dynosDir);
  if (o.sandboxes) await supervisor.adopt(o.sandboxes.takeAdopted());
  return supervisor;
}

/**
 * Runs a host's dynos as processes and keeps them converging on the desired set: starts,
 * replaces (web: the new instance is up before the old one stops), stops, and restarts
 * crashed dynos on Heroku's back-off schedule.
 */
export class Supervisor {
  private readonly slots = new Map<string, Slot>();
  private readonly stopped = new Map<string, ObservedDyno>();
  /** Which crash each report of one told of (acknowledge clears that one alone). */
  private readonly reportedCrashes = new WeakMap<ObservedDyno, { exitCode: number | null }>();
  private readonly ports = new Set<number>();
  /** Every instance not yet cleaned up, including retiring ones no slot points at any more. */
  private readonly live = new Set<Instance>();
  /** Clients that came for a dyno whose start command is still on its way, by dyno id. */
  private readonly arrivals = new Map<string, Set<() => void>>();
  private readonly unpacker: SlugUnpacker;

  constructor(
    private readonly o: SupervisorOptions,
    readonly user: DynoUser | null,
    private readonly dynosDir: string,
  ) {
    this.unpacker = new SlugUnpacker(path.join(o.workDir, "unpacked"));
  }

  /**
   * Applies the diff between `desired` and what runs; stops finish in the background.
   * One-off dynos are left out on both sides: they come and go by command only, so a
   * heartbeat never starts one again (after an agent restart, say) nor stops one early.
   */
  reconcile(desired: DesiredDyno[]): DynoDiff {
    const kept = desired.filter((d) => !isOneOffType(d.type));
    const running = [...this.slots.values()].filter((s) => !isOneOffType(s.dyno.type)).map((s) => ({ id: s.dyno.id, instance: s.dyno.instance }));
    const diff = diffDynos(kept, running);
    for (const dyno of diff.start) this.ensure(dyno);
    for (const { dyno } of diff.replace) this.ensure(dyno);
    // Adopted dynos, named again: their config vars are known from now on.
    for (const dyno of kept) if (this.slots.get(dyno.id)?.awaitingDesired) this.ensure(dyno);
    for (const id of diff.stop) void this.stop(id);
    return diff;
  }

  /** Starts a dyno, or replaces it when its instance changed; a no-op when already converging. */
  ensure(dyno: DesiredDyno): void {
    const slot = this.slots.get(dyno.id);
    if (!slot) {
      this.stopped.delete(dyno.id);
      const created: Slot = { dyno, state: "starting", exitCode: null, crashes: 0, restarts: 0, errors: new Set() };
      this.slots.set(dyno.id, created);
      if (takesClient(dyno)) this.awaitClient(created);
      void this.launch(created);
      for (const arrived of this.arrivals.get(dyno.id) ?? []) arrived();
    } else if (slot.dyno.instance !== dyno.instance) {
      this.replace(slot, dyno);
    } else if (slot.awaitingDesired) {
      // An adopted dyno named again: now its config vars are known, for its next start.
      slot.dyno = dyno;
      slot.awaitingDesired = false;
      if (slot.restartWhenDesired) this.restartCrashed(slot);
    }
  }

  /**
   * Takes over the dynos an earlier agent on this work dir left running (upgraded, or died):
   * each is watched, stopped and restarted as if this agent had started it. Of two instances
   * of one dyno (a release was replacing it), the newer is kept and the older ended. Returns
   * how many were adopted.
   */
  async adopt(found: { sandbox: Sandbox; record: InstanceRecord }[]): Promise<number> {
    const newestFirst = [...found].sort((a, b) => b.record.started_at - a.record.started_at);
    for (const { sandbox, record } of newestFirst) {
      const dyno: DesiredDyno = { ...record.dyno, env: {} };
      const inst: Instance = { dyno, sandbox, retired: false };
      this.live.add(inst);
      const existing = this.slots.get(dyno.id);
      const slot: Slot = existing ?? { dyno, state: "starting", exitCode: null, crashes: 0, restarts: 0, errors: new Set(), awaitingDesired: true };
      try {
        inst.proc = await DynoProcess.adopt(
          {
            dyno,
            appDir: "/app",
            port: record.port,
            sandbox,
            user: sandbox.user,
            bootTimeoutMs: this.o.bootTimeoutMs ?? dyno.boot_timeout_s * 1000,
            sink: this.o.sink,
            onState: () => this.onProcessState(slot, inst),
          },
          record,
        );
      } catch (err) {
        // Not to be watched, so not to run on: ended with its sandbox; the desired set starts it again.
        this.platform(dyno, `Error: could not take over the running process: ${(err as Error).message}`);
        await this.cleanup(inst);
        continue;
      }
      if (existing) {
        inst.replaced = true;
        void this.retire(inst);
        continue;
      }
      this.slots.set(dyno.id, slot);
      slot.current = inst;
      this.setState(slot, inst.proc.state, null);
      this.armTimeToLive(slot, inst, Date.now() - record.started_at);
    }
    return this.slots.size;
  }

  /**
   * Lets go of every dyno without stopping it, for the agent that takes over (an upgrade):
   * attached one-off dynos (their client's connection ends with this agent) and anything
   * not yet running are stopped; the others run on and keep their records. Returns how many
   * were handed over.
   */
  async release(): Promise<number> {
    let kept = 0;
    const ended: Promise<void>[] = [];
    for (const [id, slot] of [...this.slots]) {
      clearTimeout(slot.restartTimer);
      clearTimeout(slot.attachTimer);
      if (takesClient(slot.dyno)) {
        ended.push(this.stop(id));
        continue;
      }
      this.slots.delete(id);
      for (const inst of [slot.previous, slot.current]) {
        if (!inst || inst.retired) continue;
        await inst.launching;
        const proc = inst.proc;
        if (!proc?.pid || proc.status !== null || inst.retired || !inst.sandbox) continue;
        clearTimeout(inst.ttlTimer);
        proc.detach();
        this.live.delete(inst);
        kept++;
      }
    }
    await Promise.all(ended);
    // What is left (a restart's old instance retiring, a start not far enough to hand over) ends.
    while (this.live.size) await Promise.all([...this.live].map((i) => this.retire(i)));
    return kept;
  }

  /** Stops a dyno on purpose (SIGTERM, then SIGKILL after the grace period) and forgets it. */
  async stop(dynoId: string): Promise<void> {
    const slot = this.slots.get(dynoId);
    if (!slot) return;
    this.slots.delete(dynoId);
    clearTimeout(slot.restartTimer);
    clearTimeout(slot.attachTimer);
    if (slot.state === "crashed") this.platform(slot.dyno, "State changed from crashed to down");
    await Promise.all([slot.previous, slot.current].map((i) => i && this.retire(i)));
    if (this.slots.has(dynoId)) return; // desired again meanwhile: its new run is what gets reported
    this.stopped.set(dynoId, { id: dynoId, instance: slot.dyno.instance, state: "down", port: null, exit_code: slot.current?.proc?.status ?? slot.exitCode });
  }

  /** Stops every dyno, for the agent's shutdown, and waits for instances already retiring. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.slots.keys()].map((id) => this.stop(id)));
    // Replaced instances retire in the background; each may still be opening its sandbox.
    while (this.live.size) await Promise.all([...this.live].map((i) => this.retire(i)));
  }

  /**
   * Connects a client to an attached one-off dyno (its rendezvous token already checked):
   * once the dyno's sandbox is ready, greets the client and runs the command on its
   * connection. A dyno takes one client, ever; when that client leaves first, the dyno is
   * stopped. Waits up to `waitMs` for a dyno whose start command has not arrived yet.
   * Resolves false, touching nothing, when there is no such dyno waiting for a client.
   */
  async attach(dynoId: string, socket: Duplex, waitMs = 10_000): Promise<boolean> {
    const slot = this.slots.get(dynoId) ?? (await this.arrival(dynoId, waitMs));
    if (!slot || !takesClient(slot.dyno) || slot.attached) return false;
    slot.attached = true;
    clearTimeout(slot.attachTimer);
    const inst = slot.current;
    await inst?.launching;
    const current = () => this.slots.get(dynoId) === slot && slot.current === inst && !!inst?.proc && !inst.retired && inst.proc.state === "starting";
    if (!current()) return false;
    // A write of its own, finished before any output: the client discards its first chunk.
    const greeted = await new Promise<boolean>((resolve) => socket.write(RENDEZVOUS_GREETING, (err) => resolve(!err)));
    if (!greeted || !current() || socket.destroyed) {
      void this.stop(dynoId);
      return false;
    }
    const { dyno } = slot;
    socket.once("close", () => {
      if (this.slots.get(dynoId) !== slot || inst!.proc!.status !== null) return;
      this.platform(dyno, "The client disconnected; stopping the dyno");
      void this.stop(dynoId);
    });
    const session: AttachedSession = { socket, tty: dyno.attach === "tty" ? terminalSize(dyno.env) : null };
    inst!.proc!.start(session);
    this.armTimeToLive(slot, inst!);
    return true;
  }

  /** Where a web dyno's traffic goes: the up instance, old or new. */
  activeTarget(dynoId: string): { host: string; port: number } | undefined {
    const proc = this.serving(this.slots.get(dynoId))?.proc;
    return proc && { host: proc.address, port: proc.port };
  }

  /** Drops unpacked slugs no dyno here uses any more. */
  pruneUnpacked(keep: Set<string>): Promise<void> {
    return this.unpacker.prune(new Set([...keep, ...this.slugIds()]));
  }

  /** The dyno ids and instances being run, for diffDynos. */
  summaries(): RunningDynoSummary[] {
    return [...this.slots.values()].map((s) => ({ id: s.dyno.id, instance: s.dyno.instance }));
  }

  /** The slugs the dynos being run use (so their cached archives are kept for restarts). */
  slugIds(): string[] {
    return [...this.slots.values()].flatMap((s) => [s.dyno.slug_id, ...(s.previous ? [s.previous.dyno.slug_id] : [])]);
  }

  /** Observed states for the heartbeat, including dynos stopped since the last acknowledged one. */
  observed(): ObservedDyno[] {
    const out: ObservedDyno[] = [...this.stopped.values()];
    for (const slot of this.slots.values()) {
      const serving = this.serving(slot);
      // While a new web instance boots, the old one answers: report that one, it is what is true.
      if (serving && serving === slot.previous) {
        out.push({ id: slot.dyno.id, instance: serving.dyno.instance, state: "up", port: serving.proc!.port, address: serving.proc!.address, exit_code: null });
      } else {
        const proc = serving?.proc;
        const crash = slot.unreportedCrash;
        const report: ObservedDyno = {
          id: slot.dyno.id,
          instance: slot.dyno.instance,
          state: crash ? "crashed" : slot.state,
          port: crash ? null : (proc?.port ?? null),
          address: crash ? null : (proc?.address ?? null),
          exit_code: crash ? crash.exitCode : slot.exitCode,
        };
        if (crash) this.reportedCrashes.set(report, crash);
        out.push(report);
      }
    }
    return out;
  }

  /**
   * Each dyno's latest usage sample with its restarts and errors since the previous call
   * (which they are then taken from), for the metrics report.
   */
  takeMetrics(): DynoMetrics[] {
    const out: DynoMetrics[] = [];
    for (const slot of this.slots.values()) {
      const procs = [slot.current?.proc, slot.previous?.proc].filter((p) => p !== undefined);
      for (const p of procs) for (const code of p.takeErrors()) slot.errors.add(code);
      const usage = procs.find((p) => p.state === "up" && p.usage)?.usage ?? null;
      if (!usage && !slot.restarts && !slot.errors.size) continue;
      out.push({
        id: slot.dyno.id,
        usage: usage && {
          memory_rss_mb: usage.rssMb,
          memory_cache_mb: usage.cacheMb,
          memory_swap_mb: usage.swapMb,
          memory_total_mb: usage.totalMb,
          memory_pgpgin: usage.pgpgin,
          memory_pgpgout: usage.pgpgout,
          load_avg_1m: usage.load1m,
          load_avg_5m: usage.load5m,
          load_avg_15m: usage.load15m,
        },
        memory_quota_mb: slot.dyno.memory_mb,
        restarts: slot.restarts,
        errors: [...slot.errors],
      });
      slot.restarts = 0;
      slot.errors.clear();
    }
    return out;
  }

  /**
   * Forgets the `down` reports and crashes the control plane has now received; a dyno that
   * has moved on since its reported crash is reported again soon.
   */
  acknowledge(reported: ObservedDyno[]): void {
    let movedOn = false;
    for (const r of reported) {
      if (r.state === "down" && this.stopped.get(r.id) === r) this.stopped.delete(r.id);
      const slot = r.state === "crashed" ? this.slots.get(r.id) : undefined;
      // Only the crash this report told of: one that came since waits for the next report.
      if (slot?.unreportedCrash && slot.unreportedCrash === this.reportedCrashes.get(r)) {
        slot.unreportedCrash = undefined;
        movedOn ||= slot.state !== "crashed";
      }
    }
    if (movedOn) this.o.onChange?.();
  }

  /** A snapshot of one dyno. */
  inspect(dynoId: string): DynoInfo | undefined {
    const slot = this.slots.get(dynoId);
    if (!slot) return undefined;
    const proc = slot.current?.proc;
    return {
      state: slot.state,
      instance: slot.dyno.instance,
      pid: proc?.pid,
      port: proc?.port,
      address: proc?.address,
      dir: slot.current?.dir ?? slot.current?.sandbox?.fs.dir,
      sandbox: slot.current?.sandbox,
      crashes: slot.crashes,
    };
  }

  private serving(slot: Slot | undefined): Instance | undefined {
    if (slot?.dyno.type !== "web") return undefined;
    if (slot.current?.proc?.state === "up") return slot.current;
    if (slot.previous?.proc?.state === "up") return slot.previous;
    return undefined;
  }

  private replace(slot: Slot, dyno: DesiredDyno): void {
    clearTimeout(slot.restartTimer);
    slot.dyno = dyno;
    slot.awaitingDesired = slot.restartWhenDesired = false;
    slot.crashes = 0;
    slot.unreportedCrash = undefined; // the control plane only hears of the new instance now
    slot.restarts++;
    this.platform(dyno, "Restarting");
    if (slot.state !== "starting") this.platform(dyno, `State changed from ${slot.state} to starting`);
    this.setState(slot, "starting", null);
    for (const i of [slot.previous, slot.current]) if (i) i.replaced = true;
    // A web dyno keeps answering from whichever instance is up (even one replaced twice over).
    const serving = this.serving(slot);
    if (serving) {
      for (const i of [slot.previous, slot.current]) if (i && i !== serving) void this.retire(i);
      slot.previous = serving;
      void this.launch(slot);
      return;
    }
    // Other types never run twice at once: the old instance ends before the new one starts.
    const old = slot.current;
    slot.current = undefined;
    const launchAfter = Promise.all([slot.previous, old].map((i) => i && this.retire(i)));
    slot.previous = undefined;
    void launchAfter.then(() => {
      if (this.slots.get(dyno.id) === slot && slot.dyno === dyno && !slot.current) void this.launch(slot);
    });
  }

  /** Unpacks a fresh copy of the slug and starts the command in it. */
  private launch(slot: Slot): Promise<void> {
    const inst: Instance = { dyno: slot.dyno, retired: false };
    this.live.add(inst);
    slot.current = inst;
    inst.launching = this.spawnInstance(slot, inst);
    return inst.launching;
  }

  private async spawnInstance(slot: Slot, inst: Instance): Promise<void> {
    const { dyno } = inst;
    try {
      const archive = await this.o.slugPath(dyno);
      if (inst.retired) return;
      // Each app's dynos run as a uid of their own: one app cannot read another's files.
      const user = appUser(this.user, dyno.app_id);
      const bootTimeoutMs = this.o.bootTimeoutMs ?? dyno.boot_timeout_s * 1000;
      const common = { dyno, user, bootTimeoutMs, sink: this.o.sink, onState: () => this.onProcessState(slot, inst) };
      const sandboxes = this.o.sandboxes;
      if (sandboxes && user) {
        const lowerDir = await this.unpacker.unpack(dyno.slug_id, archive, user);
        if (inst.retired) return;
        const size = sizeLimits(dyno.size, dyno.memory_mb);
        const name = `${dyno.instance.slice(0, 8)}-${randomBytes(4).toString("hex")}`;
        inst.sandbox = await sandboxes.openSandbox({
          name,
          user,
          lowerDir,
          diskMb: size.diskMb,
          limits: { memoryMb: dyno.memory_mb, pids: size.pids, cpuWeight: size.cpuWeight },
        });
        if (inst.retired) return void (await this.cleanup(inst));
        // Every dyno has an address of its own, so any port will do; Heroku's vary too.
        const port = 3000 + Math.floor(Math.random() * 50_000);
        inst.proc = new DynoProcess({ ...common, appDir: "/app", port, sandbox: inst.sandbox });
      } else {
        const port = await this.freePort();
        const { dir, appDir } = await unpackSlug(archive, this.dynosDir, dyno.instance, user);
        inst.dir = dir;
        if (inst.retired) return void (await this.cleanup(inst));
        inst.proc = new DynoProcess({ ...common, appDir, port, sandbox: null });
        this.ports.add(port);
      }
      // An attached dyno's command starts when its client comes (see `attach`).
      if (takesClient(dyno)) return;
      inst.proc.start();
      this.armTimeToLive(slot, inst);
    } catch (err) {
      if (inst.retired) return void (await this.cleanup(inst));
      this.platform(dyno, `Error: ${(err as Error).message}`);
      await this.cleanup(inst);
      this.crashed(slot, inst, null);
    }
  }

  /** One-off dynos: stopped once their time to live is over (`ranMs` of it may have passed already). */
  private armTimeToLive(slot: Slot, inst: Instance, ranMs = 0): void {
    const { dyno } = slot;
    if (!dyno.time_to_live_s || !isOneOffType(dyno.type)) return;
    const ttl = dyno.time_to_live_s;
    inst.ttlTimer = setTimeout(
      () => {
        if (this.slots.get(dyno.id) !== slot || slot.current !== inst) return;
        this.platform(dyno, `Stopping process: its time to live (${ttl} s) is over`);
        void this.stop(dyno.id);
      },
      Math.max(0, ttl * 1000 - ranMs),
    );
    inst.ttlTimer.unref();
  }

  /** An attached one-off dyno whose client does not come in time ends unstarted. */
  private awaitClient(slot: Slot): void {
    const waitMs = this.o.attachTimeoutMs ?? ATTACH_TIMEOUT_MS;
    slot.attachTimer = setTimeout(() => {
      if (this.slots.get(slot.dyno.id) !== slot || slot.attached) return;
      this.platform(slot.dyno, `Error: no client attached within ${Math.round(waitMs / 1000)} seconds; stopping the dyno`);
      void this.stop(slot.dyno.id);
    }, waitMs);
    slot.attachTimer.unref();
  }

  /** Resolves with the dyno's slot once its start command arrives, or undefined after `waitMs`. */
  private arrival(dynoId: string, waitMs: number): Promise<Slot | undefined> {
    return new Promise((resolve) => {
      const waiters = this.arrivals.get(dynoId) ?? new Set<() => void>();
      this.arrivals.set(dynoId, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (!waiters.size) this.arrivals.delete(dynoId);
        resolve(this.slots.get(dynoId));
      };
      const timer = setTimeout(done, waitMs);
      waiters.add(done);
    });
  }

  private onProcessState(slot: Slot, inst: Instance): void {
    const proc = inst.proc!;
    this.o.onChange?.();
    // An ended process's errors (R10, R15) stay with its dyno until the next metrics report.
    if (proc.state !== "starting" && proc.state !== "up") for (const code of proc.takeErrors()) slot.errors.add(code);
    if (proc.state !== "starting" && proc.state !== "up") void proc.exited.then(() => this.cleanup(inst));
    if (inst !== slot.current || inst.retired) {
      if (inst === slot.previous && proc.state !== "up") slot.previous = undefined;
      return;
    }
    // The new instance decided the release's fate either way: the old one has served its turn
    // (a web one answers what was already sent its way for HANDOFF_MS more, see there).
    if (proc.state !== "starting" && slot.previous) {
      const old = slot.previous;
      slot.previous = undefined;
      if (proc.state === "up" && slot.dyno.type === "web") {
        old.retired = true;
        old.handoffTimer = setTimeout(() => void this.retire(old), this.o.handoffMs ?? HANDOFF_MS);
      } else void this.retire(old);
    }
    if (isOneOffType(slot.dyno.type) && proc.state !== "starting" && proc.state !== "up") {
      this.finishOneOff(slot, proc.status);
      return;
    }
    if (proc.state === "crashed") this.crashed(slot, inst, proc.status);
    else this.setState(slot, proc.state, proc.status);
  }

  /** A one-off dyno that ended: reported once as down with its exit status, then forgotten. */
  private finishOneOff(slot: Slot, status: number | null): void {
    if (this.slots.get(slot.dyno.id) !== slot) return;
    this.slots.delete(slot.dyno.id);
    clearTimeout(slot.restartTimer);
    clearTimeout(slot.attachTimer);
    this.stopped.set(slot.dyno.id, { id: slot.dyno.id, instance: slot.dyno.instance, state: "down", port: null, exit_code: status });
    this.o.onChange?.();
  }

  /** Schedules the next start: at once after a first crash, then on the back-off schedule. */
  private crashed(slot: Slot, inst: Instance, status: number | null): void {
    if (isOneOffType(slot.dyno.type)) {
      if (!inst.proc) void this.cleanup(inst);
      this.finishOneOff(slot, status);
      return;
    }
    const schedule = this.o.backoff ?? HEROKU_BACKOFF;
    const ranMs = inst.proc ? Date.now() - inst.proc.startedAt : 0;
    // A dyno that stayed up longer than the longest cool-off has recovered; start counting anew.
    slot.crashes = (ranMs >= schedule.maxMs ? 0 : slot.crashes) + 1;
    slot.unreportedCrash = { exitCode: status };
    this.setState(slot, "crashed", status);
    if (!inst.proc) void this.cleanup(inst);
    if (slot.previous) {
      void this.retire(slot.previous); // the release is what is desired, even when it fails
      slot.previous = undefined;
    }
    slot.restartTimer = setTimeout(
      () => {
        if (this.slots.get(slot.dyno.id) !== slot || slot.current !== inst) return;
        if (slot.awaitingDesired) slot.restartWhenDesired = true;
        else this.restartCrashed(slot);
      },
      restartDelayMs(slot.crashes, schedule),
    );
  }

  private restartCrashed(slot: Slot): void {
    slot.restartWhenDesired = false;
    this.platform(slot.dyno, "State changed from crashed to starting");
    slot.restarts++;
    this.setState(slot, "starting");
    void this.launch(slot);
  }

  /** Ends an instance: stops its process (with the grace period) and deletes its directory. */
  private async retire(inst: Instance): Promise<void> {
    clearTimeout(inst.handoffTimer);
    inst.retired = true;
    await inst.launching;
    if (inst.proc) {
      await inst.proc.stop(this.o.stopGraceMs ?? 30_000, inst.replaced);
      await inst.proc.exited;
    }
    await this.cleanup(inst);
  }

  private cleanup(inst: Instance): Promise<void> {
    clearTimeout(inst.ttlTimer);
    inst.cleaning ??= (async () => {
      if (inst.proc) this.ports.delete(inst.proc.port);
      if (inst.dir) await removeInstanceDir(inst.dir).catch(() => {});
      if (inst.sandbox) await inst.sandbox.dispose().catch(() => {});
      this.live.delete(inst);
    })();
    return inst.cleaning;
  }

  private async freePort(): Promise<number> {
    for (;;) {
      const port = await pickFreePort();
      if (!this.ports.has(port)) return port;
    }
  }

  private setState(slot: Slot, state: DynoState, exitCode: number | null = slot.exitCode): void {
    slot.state = state;
    slot.exitCode = exitCode;
  }

  private platform(dyno: DesiredDyno, text: string): void {
    this.o.sink({ app_id: dyno.app_id, dyno: dyno.name, source: "heroku", text, ts: Date.now() });
  }
}

/** Whether a dyno is an attached one-off (`heroku run`): its command waits for its client. */
const takesClient = (dyno: DesiredDyno) => !!dyno.attach && isOneOffType(dyno.type);

/** The client's terminal size, from the COLUMNS and LINES the CLI sends with `heroku run`. */
function terminalSize(env: Record<string, string>): { cols: number; rows: number } {
  return { cols: Number(env.COLUMNS) || 80, rows: Number(env.LINES) || 24 };
}
