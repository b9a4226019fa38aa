import { agentTag } from "../../src/agent/sandbox/network.ts";
import { execFileSync } from "node:child_process";
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
    // Health checks of 3 s: a wedged Worker is found in three of them, not in half a minute.
    platform = await startPlatform({ home, quiet: true, ephemeral: true, python: { packages: "host" }, healthTimeoutMs: 3_000 });
    sample = await deploySampleApp(platform);
  }, 180_000);

  afterAll(async () => {
    console.error = original;
    await sample?.dispatcher.close();
    await platform?.stop();
    rmSync(home, { recursive: true, force: true });
  }, 120_000);

  const answers = async () => {
    const res = await fetch(`${sample.appUrl}/`, { dispatcher: sample.dispatcher, signal: AbortSignal.timeout(5_000) }).catch(() => null);
    return res?.status === 200 && (await res.text()) === "ok";
  };

  it("starts it again, its dynos with it, and says so on the console", async () => {
    expect(await answers()).toBe(true);
    const pid = platform.pids().agent!;
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");
    // The router reaches the dyno without the agent: the app may answer for a moment after
    // the kill, so the agent's new start is waited for first, then the app on it.
    await waitFor("the host agent started again", () => platform.pids().agent !== pid, 30_000, 100);
    await waitFor("the app answering again", answers, 60_000, 200);
    const healedMs = Date.now() - killedAt;
    console.log(`healed ${healedMs} ms after the agent was killed`);
    expect(platform.pids().agent).not.toBe(pid);
    expect(said.some((l) => /the host agent died \(SIGKILL\); starting it again in 1 s/.test(l))).toBe(true);
    expect(said.some((l) => /the host agent started again \(pid \d+\)/.test(l))).toBe(true);
  }, 90_000);

  /** Sets a config var through the API; true when acknowledged. */
  const setVar = async (key: string, value: string) => {
    const res = await fetch(`${platform.apiUrl}/apps/${sample.app}/config-vars`, {
      method: "PATCH",
      headers: sample.headers,
      body: JSON.stringify({ [key]: value }),
      dispatcher: sample.dispatcher,
      signal: AbortSignal.timeout(5_000),
    }).catch(() => null);
    const ok = res?.status === 200;
    await res?.body?.cancel().catch(() => {});
    return ok;
  };
  const configVars = async () => {
    const res = await fetch(`${platform.apiUrl}/apps/${sample.app}/config-vars`, { headers: sample.headers, dispatcher: sample.dispatcher });
    return (await res.json()) as Record<string, string>;
  };
  it.each([
    ["Postgres", "SIGKILL", () => platform.pids().postgres, /Postgres died \(SIGKILL\); starting it again/, 60_000],
    ["PgBouncer", "SIGKILL", () => platform.pids().pgbouncer, /PgBouncer died \(SIGKILL\); starting it again in \d+ s/, 60_000],
    ["workerd", "SIGKILL", () => platform.pids().worker, /the Worker \(workerd\) died \(SIGKILL\); starting it again in \d+ s/, 60_000],
    // Alive but wedged: only its health checks tell, three in a row of up to 3 s each.
    ["workerd", "SIGSTOP", () => platform.pids().worker, /the Worker stopped answering \(3 health checks\); restarting workerd/, 60_000],
  ] as const)(
    "heals from a %s given %s during writes and requests, and loses no acknowledged write",
    async (part, signal, pidOf, line, allowedMs) => {
      const acknowledged: Record<string, string> = {};
      for (let i = 0; i < 3; i++) if (await setVar(`BEFORE_${i}`, part)) acknowledged[`BEFORE_${i}`] = part;
      expect(Object.keys(acknowledged)).toHaveLength(3);
      const pid = pidOf();
      expect(pid, `${part}'s pid`).toBeGreaterThan(0);
      const killedAt = Date.now();
      process.kill(pid!, signal);
      // The loop goes on while it heals: writes may fail, but what was acknowledged must stay.
      let n = 0;
      await waitFor(
        `writes and the app after ${part} was killed`,
        async () => {
          const key = `DURING_${n++}`;
          if (await setVar(key, part)) acknowledged[key] = part;
          return (await answers()) && (await setVar("HEALED", part));
        },
        allowedMs,
        250,
      );
      console.log(`${part}: healed ${Date.now() - killedAt} ms after ${signal}`);
      expect(await configVars()).toMatchObject(acknowledged);
      expect(
        said.some((l) => line.test(l)),
        said.join("\n"),
      ).toBe(true);
    },
    150_000,
  );

  it("leaves nothing behind when it stops: no process, mount, network or cgroup of its own", async () => {
    const workDir = agentWorkDir(home);
    const tag = agentTag(workDir);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(workDir);
    await platform.stop();
    const processes = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(home) && !l.includes("ps -eo"));
    expect(processes).toEqual([]);
    const mounts = readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .filter((l) => l.includes(workDir));
    expect(mounts, said.join("\n")).toEqual([]);
    expect(readdirSync("/run/netns").filter((n) => n.startsWith(`dp${tag}-`))).toEqual([]);
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toContain(`dpb${tag}`);
    for (const controller of ["memory", "pids", "cpu"]) expect(existsSync(`/sys/fs/cgroup/${controller}/dynoplane-${tag}`)).toBe(false);
  }, 90_000);
});
