import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

export interface ManagedChild {
  child: ChildProcess;
  /** Whether it has exited. */
  exited(): boolean;
  /** The tail of what it printed, for diagnosing a failed start. */
  output(): string;
  /**
   * SIGTERM to the service itself, which stops what it started in its own order; SIGKILL to
   * its whole process group once it has exited or after `graceMs`. Resolves once it has exited.
   */
  stop(graceMs: number): Promise<void>;
}

/**
 * Runs a platform service (workerd, the host agent) in a process group of its own, so
 * that stopping it also stops what it started (workerd, dynos), keeping its output.
 */
export function spawnService(command: string, args: string[], opts: SpawnOptions & { label?: string; quiet?: boolean; input?: Uint8Array }): ManagedChild {
  const child = spawn(command, args, { ...opts, detached: true, stdio: [opts.input ? "pipe" : "ignore", "pipe", "pipe"] });
  // What it reads on standard input (workerd: its configuration, whose secrets so never touch the disk).
  if (opts.input) child.stdin!.end(opts.input);
  let output = "";
  const onData = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-100_000);
    if (!opts.quiet) process.stderr.write(opts.label ? `[${opts.label}] ${chunk.toString()}` : chunk);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  let exited = false;
  child.on("exit", () => (exited = true));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
      return true;
    } catch {
      return false;
    }
  };
  return {
    child,
    exited: () => exited,
    output: () => output,
    async stop(graceMs) {
      if (!exited) {
        const done = new Promise((r) => child.once("exit", r));
        // The leader alone: a signal to the group would also end the helpers it is still
        // running (a mount, a dyno's launcher) before it could finish with them.
        child.kill("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), graceMs);
        await done;
        clearTimeout(timer);
      }
      // Whatever it left behind in its group.
      signal("SIGKILL");
    },
  };
}
