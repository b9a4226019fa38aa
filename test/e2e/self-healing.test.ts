import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { deploySampleApp, type SampleApp } from "../../src/bench/sample-app.ts";
import { agentWorkDir } from "../../src/local/host.ts";
import { startPlatform, type Platform } from "../../src/local/platform.ts";
import { waitFor } from "../support/slugs.ts";

// A platform of its own: its agent is killed on purpose, which the shared one's tests must not see.

describe.skipIf(sandboxProblems().length > 0)("a local platform whose host agent is killed", () => {
  let home: string;
  let platform: Platform;
  let sample: SampleApp;
  const said: string[] = [];
  const original = console.error;

  beforeAll(async () => {
    home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-heal-"));
    chmodSync(home, 0o755);
    console.error = (...args: unknown[]) => void said.push(args.map(String).join(" "));
    platform = await startPlatform({ home, quiet: true, ephemeral: true });
    sample = await deploySampleApp(platform);
  }, 180_000);

  afterAll(async () => {
    console.error = original;
    await sample?.dispatcher.close();
    await platform?.stop();
    rmSync(home, { recursive: true, force: true });
  }, 120_000);

  const answers = async () => {
    const res = await fetch(`${sample.appUrl}/`, { dispatcher: sample.dispatcher }).catch(() => null);
    return res?.status === 200 && (await res.text()) === "ok";
  };

  it("starts it again, its dynos with it, and says so on the console", async () => {
    expect(await answers()).toBe(true);
    const pid = platform.agentPid()!;
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    await waitFor("the app answering again", answers, 60_000, 200);
    const healedMs = Date.now() - killedAt;
    console.log(`healed ${healedMs} ms after the agent was killed`);
    expect(platform.agentPid()).not.toBe(pid);
    expect(said.some((l) => /the host agent died \(SIGKILL\); starting it again in 1 s/.test(l))).toBe(true);
    expect(said.some((l) => /the host agent started again \(pid \d+\)/.test(l))).toBe(true);
  }, 90_000);

  it("leaves nothing behind when it stops: no process, mount, network or cgroup of its own", async () => {
    const workDir = agentWorkDir(home);
    const tag = createHash("sha256").update(path.resolve(workDir)).digest("hex").slice(0, 8);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(workDir);
    await platform.stop();
    const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(home) && !l.includes("ps -eo"));
    expect(processes).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(workDir);
    expect(readdirSync("/run/netns").filter((n) => n.startsWith(`dp${tag}-`))).toEqual([]);
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toContain(`dpb${tag}`);
    for (const controller of ["memory", "pids", "cpu"]) expect(existsSync(`/sys/fs/cgroup/${controller}/dynoplane-${tag}`)).toBe(false);
  }, 90_000);
});
