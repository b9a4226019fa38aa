import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { type Duplex, type Readable, Transform, type Writable } from "node:stream";
import tty from "node:tty";
import { type DesiredDyno, type DynoErrorCode, isOneOffType, type ObservedDyno } from "../protocol/host.ts";
import type { DynoUser } from "./dyno-user.ts";
import { LineSplitter, type LogSink } from "./log-buffer.ts";
import { exitStatus, portAccepts, signalGroup, waitGroupGone } from "./process-group.ts";
import { HARD_LIMIT_FACTOR } from "./sandbox/cgroups.ts";
import type { Sandbox } from "./sandbox/index.ts";
import { OUTPUT_FIFOS } from "./sandbox/filesystem.ts";
import { envScript } from "./sandbox/launch.ts";
import { type InstanceRecord, readStatus, STATUS_FILE, writeRecord } from "./sandbox/record.ts";
import { ROOT_ENV } from "./sandbox/run.ts";
import { openTerminal } from "./terminal.ts";
import { type DynoUsage, USAGE_SAMPLE_MS, UsageSampler } from "./dyno-usage.ts";
import { AGENT_VERSION } from "./version.ts";

/** Heroku's dyno states, as the heartbeat reports them. */
export type DynoState = ObservedDyno["state"];

/** What one run of a dyno's command needs. */
export interface DynoProcessOptions {
  dyno: DesiredDyno;
  /** Where the app is, as the command sees it (/app in a sandbox). */
  appDir: string;
  port: number;
  /** The dyno's sandbox; null only where the operator turned sandboxes off. */
  sandbox: Sandbox | null;
  /** Who runs the command without a sandbox (null: the agent's own user). */
  user: DynoUser | null;
  bootTimeoutMs: number;
  sink: LogSink;
  /** Called after every state change. */
  onState: (proc: DynoProcess) => void;
}

/** Without a PATH nothing runs; the agent's own environment (and secret) never reaches a dyno. */
const BASE_ENV = ROOT_ENV;

/** Like Heroku's dynos: buildpacks' `.profile.d` scripts and the app's `.profile` run first. */
const PROFILE =
  'for f in "$HOME"/.profile.d/*.sh; do if [ -r "$f" ]; then . "$f"; fi; done; unset f; if [ -r "$HOME/.profile" ]; then . "$HOME/.profile"; fi\n';

/**
 * The dyno's shell outlives a SIGTERM that its command handles: the shell is the dyno's main
 * process, and a dyno whose main process ends is over (its PID namespace goes with it), so it
 * must not cut the command's own shutdown short. A trap, unlike an ignored signal, is reset
 * for the programs the shell starts: they get SIGTERM as usual.
 */
const KEEP_SHELL = "trap : TERM\n";

/**
 * Under a terminal, Ctrl-C reaches the foreground process group, the dyno's shell included:
 * the shell must outlive it (a REPL's KeyboardInterrupt is no reason to end the dyno).
 */
const KEEP_SHELL_TTY = "trap : TERM INT QUIT\n";

/**
 * On pipes (`heroku run --no-tty`, `run:inside`) the client gets one stream, as from Heroku:
 * stderr joins stdout in the shell, so lines arrive in the order the command wrote them.
 */
const MERGE_OUTPUT = "exec 2>&1\n";

/** The byte the CLI sends at the end of a piped stdin (it does not half-close). */
const END_OF_INPUT = 0x04;

/**
 * What `heroku run -x` appends to the command (`; echo "\uFFFF heroku-command-exit-status: $?"`)
 * and then looks for in the output. A command that ends the shell itself (`exit 3`) never
 * reaches that echo, so the agent, which knows the status, writes the line in its place.
 */
const EXIT_MARKER = "\uFFFF heroku-command-exit-status:";

/** How long output may still drain once an attached command exited, before the connection ends. */
const DRAIN_MS = 2_000;

/** How often an adopted dyno's monitor (not this agent's child, so no exit event) is looked at. */
const ADOPTED_POLL_MS = 200;

/** The client of an attached one-off dyno (`heroku run`): the connection its terminal or pipes are carried on. */
export interface AttachedSession {
  socket: Duplex;
  /** The terminal's size; null runs the command on plain pipes. */
  tty: { cols: number; rows: number } | null;
}

/**
 * One run of a dyno's command: `/bin/sh -c` in its own process group, as the dyno user,
 * with Heroku's environment, output split into log lines, and Heroku's state lines.
 */
export class DynoProcess {
  state: DynoState = "starting";
  /** The exit status once the process ended (code, or 128 + signal). */
  status: number | null = null;
  startedAt = Date.now();
  private child?: ChildProcess;
  /** An adopted dyno's monitor: started by an earlier agent, so not a child of this one. */
  private adoptedPid?: number;
  private adoptedTimer?: NodeJS.Timeout;
  /** The read ends of a sandboxed dyno's output FIFOs. */
  private outputs: Readable[] = [];
  private stopping?: Promise<void>;
  private bootTimer?: NodeJS.Timeout;
  private probeTimer?: NodeJS.Timeout;
  private memoryTimer?: NodeJS.Timeout;
  private sampler?: UsageSampler;
  /** Heroku errors (R10, R14, R15) since the last `takeErrors`. */
  private errors = new Set<DynoErrorCode>();
  private finished!: () => void;
  /** Resolves when the main process has exited (or never started). */
  readonly exited = new Promise<void>((resolve) => (this.finished = resolve));

  constructor(private readonly o: DynoProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid ?? this.adoptedPid;
  }

  get port(): number {
    return this.o.port;
  }

  /** The address the dyno's port is reached at: its sandbox's, or loopback without one. */
  get address(): string {
    return this.o.sandbox?.address ?? "127.0.0.1";
  }

  /**
   * Spawns the command; web dynos are `up` once their port accepts, others at once. With a
   * `session` (an attached one-off dyno) its terminal or pipes are the client's connection
   * instead of the app's log, and the connection ends once the command and its output have.
   */
  start(session?: AttachedSession): void {
    const { dyno, appDir, port, user, sandbox } = this.o;
    this.platform(`Starting process with command \`${dyno.command}\``);
    const env = { ...BASE_ENV, ...dyno.env, PORT: String(port), DYNO: dyno.name, PS: dyno.name, HOME: appDir };
    const term = session?.tty ? openTerminal(session.tty.cols, session.tty.rows) : null;
    const script = (term ? KEEP_SHELL_TTY : session ? KEEP_SHELL + MERGE_OUTPUT : KEEP_SHELL) + PROFILE + dyno.command;
    // A sandboxed dyno of the app's own (not an attached one) writes to FIFOs in its control
    // directory, opened read-write so that it never meets a closed reader: it runs on while
    // no agent reads (one replacing another), and the next agent opens the same FIFOs.
    const adoptable = !!sandbox && !session;
    const fifos = adoptable ? OUTPUT_FIFOS.map((f) => path.join(sandbox.fs.ctlDir, f)) : [];
    const readers = fifos.map((f) => openSync(f, constants.O_RDONLY | constants.O_NONBLOCK));
    const writers = fifos.map((f) => openSync(f, constants.O_RDWR));
    const stdio: StdioOptions = term
      ? [term.slave, term.slave, term.slave]
      : adoptable
        ? ["ignore", writers[0]!, writers[1]!]
        : [session ? "pipe" : "ignore", "pipe", "pipe"];
    // In a sandbox every process up to the tenant's shell is root with ROOT_ENV; the tenant's
    // environment is handed over on fd 3 and applied by that shell (see sandbox/launch.ts).
    // Under a terminal the tenant's shell leads a session of its own with the terminal as its
    // controlling one (setsid --ctty), so Ctrl-C and job control work as on a laptop.
    let child: ChildProcess;
    try {
      child = sandbox
        ? spawn(
            "/bin/sh",
            sandbox
              .argv(script, {
                hostname: dyno.name,
                name: dyno.name,
                terminal: !!term,
                ...(adoptable ? { statusFile: path.join(sandbox.fs.ctlDir, STATUS_FILE) } : {}),
              })
              .slice(1),
            {
              cwd: "/",
              env: ROOT_ENV,
              stdio: [...stdio, "pipe"],
              // Its own session: nothing sent to the agent's process group reaches the dyno,
              // which outlives the agent (for the next one to adopt; see the supervisor).
              detached: adoptable,
            },
          )
        : spawn(term ? "/usr/bin/setsid" : "/bin/sh", term ? ["--ctty", "/bin/sh", "-c", script] : ["-c", script], {
            cwd: appDir,
            env,
            // setsid: its own process group, so stop and kill reach its children too
            // (under a terminal `setsid --ctty` makes it, and the child is no group leader)
            detached: !term,
            stdio,
            ...(user ? { uid: user.uid, gid: user.gid } : {}),
          });
    } finally {
      // The dyno holds the terminal's slave (or the FIFOs' writing ends) now; the agent keeps only the reading side.
      if (term) closeSync(term.slave);
      for (const fd of writers) closeSync(fd);
    }
    this.child = child;
    if (sandbox) {
      const envPipe = child.stdio[3] as Writable;
      envPipe.on("error", () => {}); // a sandbox that failed to start closes it early; 'exit' says why
      envPipe.end(envScript(env));
    }
    if (session) this.connect(session, child, term && new tty.ReadStream(term.master));
    else this.readOutput(adoptable ? readers.map(fifoReader) : [child.stdout!, child.stderr!]);
    child.on("error", (err) => {
      if (child.pid !== undefined) return; // a late error of a running child; 'exit' follows
      this.platform(`Error: could not start process: ${err.message}`);
      this.onExit(127);
    });
    child.on("exit", (code, signal) => this.onExit(exitStatus(code, signal)));
    if (child.pid === undefined) return;
    if (adoptable) {
      const { env: _env, ...rest } = dyno;
      writeRecord(sandbox.fs.ctlDir, {
        version: 1,
        dyno: rest,
        port,
        pid: child.pid,
        started_at: this.startedAt,
        agent_version: AGENT_VERSION,
        sandbox: sandbox.describe(),
      });
    }
    if (sandbox) this.watchMemory(sandbox);
    if (dyno.type === "web") this.awaitBind();
    else this.setState("up");
  }

  /**
   * Takes over a dyno an earlier agent started (its sandbox and record): reads its output
   * FIFOs, watches its monitor for the exit status, samples its usage. A web dyno whose port
   * accepts is `up` at once; one still booting is waited for as at a start. No state line is
   * written: to the app, nothing happened.
   */
  static async adopt(o: DynoProcessOptions, record: InstanceRecord): Promise<DynoProcess> {
    const proc = new DynoProcess(o);
    const box = o.sandbox!;
    proc.startedAt = record.started_at;
    proc.adoptedPid = record.pid;
    proc.readOutput(OUTPUT_FIFOS.map((f) => fifoReader(openSync(path.join(box.fs.ctlDir, f), constants.O_RDONLY | constants.O_NONBLOCK))));
    // Its start time tells the monitor from a later process that got its pid.
    const born = processStart(record.pid);
    proc.adoptedTimer = setInterval(() => {
      if (born !== null && processStart(record.pid) === born) return;
      clearInterval(proc.adoptedTimer);
      // No status written: the monitor itself was killed (with SIGKILL, as the sweep does).
      proc.onExit(readStatus(box.fs.ctlDir) ?? 128 + 9);
    }, ADOPTED_POLL_MS);
    proc.watchMemory(box);
    if (o.dyno.type !== "web") proc.state = "up";
    else if (await portAccepts(o.port, 1_000, box.address)) proc.state = "up";
    else proc.awaitBind();
    return proc;
  }

  /**
   * Lets go of the dyno without stopping it (the agent is handing its dynos to the next
   * one): timers off, output FIFOs closed on this side (the dyno holds them open), and the
   * process no longer watched.
   */
  detach(): void {
    this.clearTimers();
    clearInterval(this.memoryTimer);
    clearInterval(this.adoptedTimer);
    this.child?.removeAllListeners("exit");
    this.child?.unref();
    for (const out of this.outputs) out.destroy();
  }

  /** Splits the dyno's stdout and stderr into the app's log lines. */
  private readOutput(streams: Readable[]): void {
    const { dyno } = this.o;
    for (const stream of streams) {
      this.outputs.push(stream);
      const lines = new LineSplitter((text) => this.o.sink({ app_id: dyno.app_id, dyno: dyno.name, source: "app", text, ts: Date.now() }));
      stream.on("data", (chunk: Buffer) => lines.push(chunk));
      stream.on("end", () => lines.end());
      stream.on("error", () => lines.end());
    }
  }

  /**
   * Carries an attached dyno's terminal (or stdin and merged stdout/stderr) over the client's
   * connection, with back-pressure both ways. The connection ends once the command exited and
   * its output is drained (a terminal reports EIO when the last process holding it is gone).
   */
  private connect(session: AttachedSession, child: ChildProcess, master: tty.ReadStream | null): void {
    const { socket } = session;
    const outputs: NodeJS.ReadableStream[] = master ? [master] : [child.stdout!, child.stderr!];
    let open = outputs.length;
    let drained!: () => void;
    const outputDone = new Promise<void>((resolve) => (drained = resolve));
    for (const out of outputs) {
      const ended = () => {
        if (--open === 0) drained();
      };
      out.once("end", ended);
      out.once("error", ended); // EIO: the terminal's last holder is gone; EPIPE and the like: the same
      out.pipe(socket, { end: false });
    }
    if (master) {
      socket.pipe(master, { end: false });
    } else {
      const stdin = child.stdin!;
      stdin.on("error", () => {}); // a command that does not read its input closes it early
      // The CLI ends a piped stdin with \u0004 (it never half-closes): what follows is not input.
      let ended = false;
      const input = new Transform({
        transform(chunk: Buffer, _enc, next) {
          if (ended) return next();
          const eot = chunk.indexOf(END_OF_INPUT);
          if (eot < 0) return next(null, chunk);
          ended = true;
          this.push(chunk.subarray(0, eot));
          this.push(null);
          next();
        },
      });
      socket.pipe(input).pipe(stdin);
    }
    socket.on("error", () => {}); // a dropped client shows as 'close'; the owner stops the dyno then
    const marker = this.o.dyno.command.includes(EXIT_MARKER) ? watchFor(outputs, Buffer.from(EXIT_MARKER)) : null;
    void this.exited.then(async () => {
      await Promise.race([outputDone, new Promise((r) => setTimeout(r, DRAIN_MS).unref())]);
      if (marker && !marker.seen() && this.status !== null) socket.write(`${EXIT_MARKER} ${this.status}\r\n`);
      socket.end();
      if (master) {
        socket.unpipe(master);
        master.destroy();
      }
    });
  }

  /**
   * SIGTERM to the group; SIGKILL to whatever is left after `graceMs`. Ends `down`; a
   * `replaced` process (a restart's old instance) does not write that last state line: the
   * dyno itself is starting or up again in its new instance.
   */
  stop(graceMs: number, replaced = false): Promise<void> {
    this.stopping ??= this.terminate(graceMs, replaced);
    return this.stopping;
  }

  private async terminate(graceMs: number, replaced: boolean): Promise<void> {
    this.clearTimers();
    // An attached dyno whose client never came: nothing was started, nothing is left to stop.
    if (!this.child && this.adoptedPid === undefined) return this.finished();
    const pid = this.pid;
    if (pid !== undefined && this.status === null) {
      this.platform("Stopping all processes with SIGTERM");
      // Every process of the dyno, not just the shell: the app's own shutdown is what the grace period is for.
      const graceful = this.o.sandbox ? await this.termSandbox(this.o.sandbox, graceMs) : await this.termGroup(pid, graceMs);
      if (!graceful) {
        this.platform(`Error R12 (Exit timeout) -> At least one process failed to exit within ${seconds(graceMs)} seconds of SIGTERM`);
        this.platform("Stopping remaining processes with SIGKILL");
        this.killAll();
        // Stopped means stopped: wait until the kill has landed on every process.
        if (!this.o.sandbox) await waitGroupGone(pid, 5_000);
      }
      await this.exited;
      this.setState("down", "down", !replaced);
    }
  }

  /**
   * SIGTERM to each of the tenant's processes in the sandbox, also to those that appear
   * while the grace period runs (a stop can come while the sandbox is still starting). The
   * dyno is over when its main process is: its PID namespace, and all in it, go with it.
   */
  private async termSandbox(box: Sandbox, graceMs: number): Promise<boolean> {
    const signaled = new Set<number>();
    const deadline = Date.now() + graceMs;
    for (;;) {
      if (this.status !== null) return true;
      for (const pid of box.tenantPids()) {
        if (signaled.has(pid)) continue;
        signaled.add(pid);
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // Exited meanwhile.
        }
      }
      if (Date.now() >= deadline) return false;
      await Promise.race([this.exited, new Promise((r) => setTimeout(r, 50))]);
    }
  }

  /** SIGTERM to the process group; true when the whole group is gone within the grace period. */
  private async termGroup(pgid: number, graceMs: number): Promise<boolean> {
    signalGroup(pgid, "SIGTERM");
    return waitGroupGone(pgid, graceMs);
  }

  /** SIGKILL to every process of the dyno: all of its sandbox, else its process group. */
  private killAll(): void {
    if (this.o.sandbox) this.o.sandbox.killAll();
    else if (this.pid !== undefined) signalGroup(this.pid, "SIGKILL");
  }

  private awaitBind(): void {
    const started = Date.now();
    const probe = async () => {
      if (this.state !== "starting" || this.status !== null || this.stopping) return;
      if (await portAccepts(this.o.port, 1_000, this.address)) {
        if (this.state === "starting" && this.status === null && !this.stopping) {
          this.clearTimers();
          this.setState("up");
        }
        return;
      }
      this.probeTimer = setTimeout(probe, Math.min(250, 50 + (Date.now() - started) / 20));
    };
    this.probeTimer = setTimeout(probe, 50);
    this.bootTimer = setTimeout(() => {
      if (this.state !== "starting" || this.status !== null || this.stopping) return;
      this.platform(`Error R10 (Boot timeout) -> Web process failed to bind to $PORT within ${seconds(this.o.bootTimeoutMs)} seconds of launch`);
      this.errors.add("R10");
      this.platform("Stopping process with SIGKILL");
      this.killAll();
    }, this.o.bootTimeoutMs);
  }

  /**
   * Samples the dyno's memory and load every 5 s (runtime metrics), with Heroku's R14 while
   * it is over its quota (it keeps running; the kernel stops it at twice that).
   */
  private watchMemory(box: Sandbox): void {
    const quota = this.o.dyno.memory_mb;
    const sampler = new UsageSampler(box.cgroup);
    this.sampler = sampler;
    this.memoryTimer = setInterval(() => {
      const usedMb = Math.round(sampler.sample().chargedMb);
      if (usedMb > quota) {
        this.platform(`Process running mem=${usedMb}M(${Math.round((usedMb / quota) * 1000) / 10}%)`);
        this.platform("Error R14 (Memory quota exceeded)");
        this.errors.add("R14");
      }
    }, USAGE_SAMPLE_MS);
    this.memoryTimer.unref();
  }

  /** The dyno's latest usage sample (null before the first, or without a sandbox to measure). */
  get usage(): DynoUsage | null {
    return this.sampler?.latest ?? null;
  }

  /** The Heroku errors the dyno had since the last call, each once. */
  takeErrors(): DynoErrorCode[] {
    const taken = [...this.errors];
    this.errors.clear();
    return taken;
  }

  private onExit(status: number): void {
    if (this.status !== null) return;
    this.status = status;
    this.clearTimers();
    clearInterval(this.memoryTimer);
    clearInterval(this.adoptedTimer);
    if (this.o.sandbox?.cgroup.oomKilled()) {
      this.platform(`Error R15 (Memory quota vastly exceeded) -> the dyno used more than ${this.o.dyno.memory_mb * HARD_LIMIT_FACTOR}M and was stopped`);
      this.errors.add("R15");
    }
    this.platform(`Process exited with status ${status}`);
    if (this.pid !== undefined && !this.stopping) {
      // The dyno ends with its main process, as a container would: nothing it left behind
      // survives (in a sandbox its PID namespace is gone already; this covers the rest).
      this.killAll();
    }
    if (!this.stopping) {
      if (isOneOffType(this.o.dyno.type)) this.setState("down", "complete");
      else this.setState("crashed");
    }
    this.finished();
  }

  private setState(next: DynoState, word: string = next, log = true): void {
    if (this.state === next) return;
    if (log) this.platform(`State changed from ${this.state} to ${word}`);
    this.state = next;
    this.o.onState(this);
  }

  private platform(text: string): void {
    this.o.sink({ app_id: this.o.dyno.app_id, dyno: this.o.dyno.name, source: "heroku", text, ts: Date.now() });
  }

  private clearTimers(): void {
    clearTimeout(this.bootTimer);
    clearTimeout(this.probeTimer);
  }
}

/** A stream over the reading end of an output FIFO. */
const fifoReader = (fd: number): Readable => new net.Socket({ fd, readable: true, writable: false });

/**
 * When a running process started (clock ticks since boot, /proc's `starttime`), or null when
 * there is none by that pid or it is a zombie (waiting for a parent that is not this agent).
 */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command's name (which may hold spaces) come state, ppid, ...: starttime is the 20th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? null : (fields[19] ?? null);
  } catch {
    return null;
  }
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** Whether `needle` appeared in any of `streams` (also across chunk boundaries). */
function watchFor(streams: NodeJS.ReadableStream[], needle: Buffer): { seen: () => boolean } {
  let seen = false;
  for (const stream of streams) {
    let carry = Buffer.alloc(0);
    stream.on("data", (chunk: Buffer | string) => {
      if (seen) return;
      const joined = Buffer.concat([carry, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)]);
      if (joined.includes(needle)) seen = true;
      carry = joined.subarray(Math.max(0, joined.length - needle.length + 1));
    });
  }
  return { seen: () => seen };
}
