import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import { freePort } from "../node/ports.ts";

/** Sends a signal to every process in a group; a group that is already gone is fine. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * Whether any process of the group still runs. Reads /proc so that zombies (orphans an init
 * that does not reap leaves behind) do not count; falls back to kill(0) without /proc.
 */
export async function groupAlive(pgid: number): Promise<boolean> {
  let pids: string[];
  try {
    pids = await fs.readdir("/proc");
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch {
      return false;
    }
  }
  for (const pid of pids) {
    if (pid.charCodeAt(0) > 57) continue; // only numeric entries are processes
    let stat: string;
    try {
      stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // exited while we looked
    }
    // Fields after the parenthesised command name: state ppid pgrp …
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") return true;
  }
  return false;
}

/** Resolves true once the group is gone, or false when `timeoutMs` passes first. */
export async function waitGroupGone(pgid: number, timeoutMs: number, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await groupAlive(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * Kills the process groups of every process whose working directory is below `dir`: dynos
 * a previous agent left running would otherwise hold their ports and run twice.
 */
export async function killProcessesUnder(dir: string): Promise<number> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const pids = await fs.readdir("/proc").catch(() => [] as string[]);
  let killed = 0;
  for (const pid of pids) {
    if (pid.charCodeAt(0) > 57 || Number(pid) === process.pid) continue;
    const cwd = await fs.readlink(`/proc/${pid}/cwd`).catch(() => "");
    if (!cwd.startsWith(prefix)) continue;
    for (const target of [-Number(pid), Number(pid)]) {
      try {
        process.kill(target, "SIGKILL"); // the group first: each dyno leads its own
        killed++;
        break;
      } catch {
        // not a group leader, or gone already
      }
    }
  }
  return killed;
}

/** The shell's convention for an exit status: the code, or 128 + the signal number. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
}

/** A TCP port on 127.0.0.1 that was free a moment ago, for a dyno's $PORT. */
export const pickFreePort = freePort;

/** One attempt to connect to host:port; true when something accepts. */
export function portAccepts(port: number, timeoutMs = 1_000, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
