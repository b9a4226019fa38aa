import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import type { DynoUser } from "../dyno-user.ts";
import { LineSplitter } from "../log-buffer.ts";
import { exitStatus, signalGroup } from "../process-group.ts";
import type { Sandbox } from "../sandbox/index.ts";
import { envScript } from "../sandbox/launch.ts";
import { ROOT_ENV } from "../sandbox/run.ts";

/** How one build step's process runs. */
export interface StepOptions {
  cwd?: string;
  /** The whole environment: nothing of the agent's own (its secret included) is inherited. */
  env: Record<string, string>;
  /** Who it runs as; null runs it as the agent's own user. */
  user: DynoUser | null;
  /** Runs it in this sandbox (as the sandbox's user), seeing these host paths too; `cwd` is then a path inside. */
  sandbox?: { box: Sandbox; readOnly: [string, string][]; readWrite: [string, string][] };
  /** Aborting kills the whole process group (the build's time limit, the agent stopping). */
  signal?: AbortSignal;
  /** Every line of stderr, and of stdout unless stdout is captured or piped. */
  onLine?: (text: string) => void;
  /** Keep stdout (up to `maxCapture` bytes) instead of treating it as output lines. */
  capture?: boolean;
  maxCapture?: number;
  /** Fed to stdin; a read error ends stdin early and the process's own failure is reported. */
  stdin?: Readable;
  /** Receives stdout raw, with backpressure (a file, a size-checking transform). */
  stdoutTo?: Writable;
}

/** How a step ended: its exit status (code, or 128 + signal) and what it printed when captured. */
export interface StepResult {
  status: number;
  stdout: string;
}

/** A build step that failed; the message is shown to the user as the build's error. */
export class BuildError extends Error {}

/**
 * Runs a program in its own process group and resolves when it has exited. Whatever it
 * left running in its group is killed then: a build step must not outlive the build.
 */
export function runStep(cmd: string, args: string[], o: StepOptions): Promise<StepResult> {
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) return reject(abortReason(o.signal));
    const sb = o.sandbox;
    // In a sandbox its whole PID namespace ends with it; the environment goes in on fd 3.
    const child = sb
      ? spawn(
          "/bin/sh",
          sb.box
            .argv('exec "$@"', {
              readOnly: sb.readOnly,
              readWrite: sb.readWrite,
              chdir: o.cwd ?? "/app",
              hostname: "build",
              name: "build",
              args: [cmd, ...args],
            })
            .slice(1),
          {
            cwd: "/",
            env: ROOT_ENV,
            detached: true,
            stdio: [o.stdin ? "pipe" : "ignore", "pipe", "pipe", "pipe"],
          },
        )
      : spawn(cmd, args, {
          cwd: o.cwd,
          env: o.env,
          detached: true,
          stdio: [o.stdin ? "pipe" : "ignore", "pipe", "pipe"],
          ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
        });
    if (sb) {
      const envPipe = child.stdio[3] as Writable;
      envPipe.on("error", () => {});
      envPipe.end(envScript(o.env));
    }
    const captured: Buffer[] = [];
    let capturedBytes = 0;
    const limit = o.maxCapture ?? 1024 * 1024;
    const splitters: LineSplitter[] = [];
    const toLines = (stream: Readable) => {
      const lines = new LineSplitter((text) => o.onLine?.(text));
      splitters.push(lines);
      stream.on("data", (chunk: Buffer) => lines.push(chunk));
    };
    if (o.stdoutTo) child.stdout!.pipe(o.stdoutTo);
    else if (o.capture) {
      child.stdout!.on("data", (chunk: Buffer) => {
        if (capturedBytes < limit) captured.push(chunk.subarray(0, limit - capturedBytes));
        capturedBytes += chunk.length;
      });
    } else toLines(child.stdout!);
    toLines(child.stderr!);
    if (o.stdin) {
      o.stdin.on("error", () => child.stdin!.destroy());
      child.stdin!.on("error", () => o.stdin!.destroy());
      o.stdin.pipe(child.stdin!);
    }
    const onAbort = () => child.pid !== undefined && signalGroup(child.pid, "SIGKILL");
    o.signal?.addEventListener("abort", onAbort, { once: true });
    let status = 0;
    let settled = false;
    child.on("error", (err) => {
      if (settled || child.pid !== undefined) return; // a late error of a running child: 'exit' follows
      settled = true;
      o.signal?.removeEventListener("abort", onAbort);
      reject(new BuildError(`could not run ${cmd}: ${err.message}`));
    });
    const finish = () => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener("abort", onAbort);
      for (const s of splitters) s.end();
      if (o.signal?.aborted) return reject(abortReason(o.signal));
      resolve({ status, stdout: Buffer.concat(captured).toString("utf8") });
    };
    child.on("exit", (code, sig) => {
      status = exitStatus(code, sig);
      // Background processes it started would hold its pipes open; the step is over.
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      // One that escaped the group (setsid) may still hold them: stop reading after a moment.
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, 2_000).unref();
    });
    child.on("close", finish);
  });
}

/** Like runStep, but a non-zero exit is a BuildError carrying the last lines of stderr. */
export async function runChecked(what: string, cmd: string, args: string[], o: StepOptions): Promise<StepResult> {
  const tail: string[] = [];
  const result = await runStep(cmd, args, {
    ...o,
    onLine: (text) => {
      tail.push(text);
      if (tail.length > 5) tail.shift();
      o.onLine?.(text);
    },
  });
  if (result.status !== 0) throw new BuildError(`${what} failed (exit status ${result.status})${tail.length ? `: ${tail.join(" / ")}` : ""}`);
  return result;
}

/** The error an aborted build step rejects with: the abort's reason when it is an Error. */
export function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new BuildError(String(signal.reason ?? "the build was cancelled"));
}
