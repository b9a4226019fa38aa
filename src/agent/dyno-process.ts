import { spawn, type ChildProcess } from "node:child_process";
import type { DesiredDyno, ObservedDyno } from "../protocol/host.ts";
import type { DynoUser } from "./dyno-user.ts";
import { LineSplitter, type LogSink } from "./log-buffer.ts";
import { createMemoryCgroup, HARD_LIMIT_FACTOR, type MemoryCgroup } from "./memory-limit.ts";
import { exitStatus, portAccepts, signalGroup, waitGroupGone } from "./process-group.ts";

/** Heroku's dyno states, as the heartbeat reports them. */
export type DynoState = ObservedDyno["state"];

/** What one run of a dyno's command needs. */
export interface DynoProcessOptions {
  dyno: DesiredDyno;
  appDir: string;
  port: number;
  user: DynoUser | null;
  bootTimeoutMs: number;
  sink: LogSink;
  /** Called after every state change. */
  onState: (proc: DynoProcess) => void;
}

/** Without a PATH nothing runs; the agent's own environment (and secret) never reaches a dyno. */
const BASE_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

/** Like Heroku's dynos: buildpacks' `.profile.d` scripts and the app's `.profile` run first. */
const PROFILE = 'for f in "$HOME"/.profile.d/*.sh; do if [ -r "$f" ]; then . "$f"; fi; done; unset f; if [ -r "$HOME/.profile" ]; then . "$HOME/.profile"; fi\n';

/** Joins the cgroup given as $1, becomes uid $2 / gid $3 (no supplementary groups), runs $4. */
const JOIN_AND_DROP = 'echo $$ > "$1" && exec setpriv --reuid="$2" --regid="$3" --clear-groups /bin/sh -c "$4"';

/** How often a dyno's memory is checked against its quota (R14 lines). */
const MEMORY_CHECK_MS = 5_000;

/** Types that run once and end (`heroku run`, release phase) instead of being kept up. */
export function isOneOff(type: string): boolean {
  return type === "run" || type === "release";
}

/**
 * One run of a dyno's command: `/bin/sh -c` in its own process group, as the dyno user,
 * with Heroku's environment, output split into log lines, and Heroku's state lines.
 */
export class DynoProcess {
  state: DynoState = "starting";
  /** The exit status once the process ended (code, or 128 + signal). */
  status: number | null = null;
  readonly startedAt = Date.now();
  private child?: ChildProcess;
  private stopping?: Promise<void>;
  private bootTimer?: NodeJS.Timeout;
  private probeTimer?: NodeJS.Timeout;
  private memoryTimer?: NodeJS.Timeout;
  private memory: MemoryCgroup | null = null;
  private finished!: () => void;
  /** Resolves when the main process has exited (or never started). */
  readonly exited = new Promise<void>((resolve) => (this.finished = resolve));

  constructor(private readonly o: DynoProcessOptions) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get port(): number {
    return this.o.port;
  }

  /** Spawns the command; web dynos are `up` once their port accepts, others at once. */
  start(): void {
    const { dyno, appDir, port, user } = this.o;
    this.platform(`Starting process with command \`${dyno.command}\``);
    const env = { ...BASE_ENV, ...dyno.env, PORT: String(port), DYNO: dyno.name, PS: dyno.name, HOME: appDir };
    const script = PROFILE + dyno.command;
    // With a memory cgroup, a root shell joins it and then drops to the dyno user, so the
    // app and everything it forks are inside the limit from their first instruction.
    this.memory = user ? createMemoryCgroup(`${dyno.id}-${dyno.instance}`, dyno.memory_mb) : null;
    const [command, args] = this.memory
      ? ["/bin/sh", ["-c", JOIN_AND_DROP, "dyno", this.memory.procsFile, String(user!.uid), String(user!.gid), script]]
      : ["/bin/sh", ["-c", script]];
    const child = spawn(command, args as string[], {
      cwd: appDir,
      env,
      detached: true, // setsid: its own process group, so stop and kill reach its children too
      stdio: ["ignore", "pipe", "pipe"],
      ...(user && !this.memory ? { uid: user.uid, gid: user.gid } : {}),
    });
    this.child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      const lines = new LineSplitter((text) => this.o.sink({ app_id: dyno.app_id, dyno: dyno.name, source: "app", text, ts: Date.now() }));
      stream.on("data", (chunk: Buffer) => lines.push(chunk));
      stream.on("end", () => lines.end());
      stream.on("error", () => lines.end());
    }
    child.on("error", (err) => {
      if (child.pid !== undefined) return; // a late error of a running child; 'exit' follows
      this.platform(`Error: could not start process: ${err.message}`);
      this.onExit(127);
    });
    child.on("exit", (code, signal) => this.onExit(exitStatus(code, signal)));
    if (child.pid === undefined) return;
    if (this.memory) this.watchMemory(this.memory);
    if (dyno.type === "web") this.awaitBind();
    else this.setState("up");
  }

  /** SIGTERM to the group; SIGKILL to whatever is left after `graceMs`. Ends `down`. */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= this.terminate(graceMs);
    return this.stopping;
  }

  private async terminate(graceMs: number): Promise<void> {
    this.clearTimers();
    const pgid = this.child?.pid;
    if (pgid !== undefined && this.status === null) {
      this.platform("Stopping all processes with SIGTERM");
      signalGroup(pgid, "SIGTERM");
      // The group, not just the shell: the app's own shutdown is what the grace period is for.
      if (!(await waitGroupGone(pgid, graceMs))) {
        this.platform(`Error R12 (Exit timeout) -> At least one process failed to exit within ${seconds(graceMs)} seconds of SIGTERM`);
        this.platform("Stopping remaining processes with SIGKILL");
        signalGroup(pgid, "SIGKILL");
        // Stopped means stopped: wait until the kill has landed on every process of the group.
        await waitGroupGone(pgid, 5_000);
      }
      await this.exited;
      this.setState("down");
    }
  }

  private awaitBind(): void {
    const started = Date.now();
    const probe = async () => {
      if (this.state !== "starting" || this.status !== null || this.stopping) return;
      if (await portAccepts(this.o.port)) {
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
      this.platform("Stopping process with SIGKILL");
      signalGroup(this.child!.pid!, "SIGKILL");
    }, this.o.bootTimeoutMs);
  }

  /** Heroku's R14 while a dyno is over its quota (it keeps running; the kernel stops it at twice that). */
  private watchMemory(memory: MemoryCgroup): void {
    const quota = this.o.dyno.memory_mb;
    this.memoryTimer = setInterval(() => {
      const usedMb = Math.round(memory.usageBytes() / 1024 / 1024);
      if (usedMb > quota) {
        this.platform(`Process running mem=${usedMb}M(${Math.round((usedMb / quota) * 1000) / 10}%)`);
        this.platform("Error R14 (Memory quota exceeded)");
      }
    }, MEMORY_CHECK_MS);
    this.memoryTimer.unref();
  }

  private onExit(status: number): void {
    if (this.status !== null) return;
    this.status = status;
    this.clearTimers();
    clearInterval(this.memoryTimer);
    if (this.memory?.oomKilled()) {
      this.platform(`Error R15 (Memory quota vastly exceeded) -> the dyno used more than ${this.o.dyno.memory_mb * HARD_LIMIT_FACTOR}M and was stopped`);
    }
    this.platform(`Process exited with status ${status}`);
    if (this.child?.pid !== undefined && !this.stopping) {
      // The dyno ends with its main process, as a container would: nothing it left behind survives.
      signalGroup(this.child.pid, "SIGKILL");
    }
    // The cgroup can go once the last of the group has been reaped.
    if (this.memory) setTimeout(() => this.memory?.remove(), 2_000).unref();
    if (!this.stopping) {
      if (isOneOff(this.o.dyno.type)) this.setState("down", "complete");
      else this.setState("crashed");
    }
    this.finished();
  }

  private setState(next: DynoState, word: string = next): void {
    if (this.state === next) return;
    this.platform(`State changed from ${this.state} to ${word}`);
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

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}
