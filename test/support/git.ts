import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PktLineReader } from "../../src/git/pkt-line.ts";
import { platform } from "./api.ts";
import { chunked } from "./streams.ts";

/** git's environment for tests: a throwaway HOME, no system config, no prompts, the platform's CA. */
export function gitEnv(home: string, extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("GIT_")) env[k] = v;
  return {
    ...env,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_SSL_CAINFO: platform().bundlePath,
    GIT_AUTHOR_NAME: "Test",
    GIT_AUTHOR_EMAIL: "test@example.com",
    GIT_COMMITTER_NAME: "Test",
    GIT_COMMITTER_EMAIL: "test@example.com",
    ...extra,
  };
}

/** A fresh repository on branch main with one commit of `files`. */
export function makeRepo(files: Record<string, string>): { dir: string; home: string; git: (...args: string[]) => string } {
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-git-home-"));
  const dir = path.join(home, "app");
  mkdirSync(dir);
  const git = (...args: string[]) => execFileSync("git", args, { cwd: dir, env: gitEnv(home), encoding: "utf8" });
  git("init", "-q", "-b", "main");
  commitFiles(dir, git, files, "first");
  return { dir, home, git };
}

/** Writes files and commits them. */
export function commitFiles(dir: string, git: (...args: string[]) => string, files: Record<string, string>, message: string): string {
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
  git("add", "-A");
  git("commit", "-q", "--allow-empty", "-m", message);
  return git("rev-parse", "HEAD").trim();
}

export interface GitRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs git and collects its output; `onStderr` sees each chunk as it arrives (with its time). */
export function runGit(
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs?: number; onStderr?: (chunk: string) => void },
): Promise<GitRun> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => {
      stderr += d;
      opts.onStderr?.(d);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A receive-pack response taken apart: progress text (band 2) and the report (band 1, or plain). */
export async function parsePushResponse(bytes: Uint8Array, sideband = true): Promise<{ progress: string; report: string[] }> {
  const outer = new PktLineReader(chunked(bytes, 1 << 20));
  const dec = new TextDecoder();
  let progress = "";
  const band1: Uint8Array[] = [];
  if (!sideband) return { progress, report: await pktTexts(bytes) };
  for (let p = await outer.read(); p !== null; p = await outer.read()) {
    if (p === "flush") break;
    if (p[0] === 1) band1.push(p.subarray(1));
    else if (p[0] === 2) progress += dec.decode(p.subarray(1));
    else throw new Error(`unexpected band ${p[0]}`);
  }
  return { progress, report: await pktTexts(Buffer.concat(band1)) };
}

async function pktTexts(bytes: Uint8Array): Promise<string[]> {
  const reader = new PktLineReader(chunked(bytes, 1 << 20));
  const out: string[] = [];
  for (let p = await reader.read(); p !== null; p = await reader.read()) out.push(p === "flush" ? "0000" : new TextDecoder().decode(p).replace(/\n$/, ""));
  return out;
}
