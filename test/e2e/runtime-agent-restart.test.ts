import { agentTag } from "../../src/agent/sandbox/network.ts";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq, inArray } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynos, hosts } from "../../src/db/schema/index.ts";
import { freePort } from "../../src/node/ports.ts";
import { ROOT } from "../../src/local/worker.ts";
import { AGENT_VERSION } from "../../src/agent/version.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { api, platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { appProcesses, deploySlug, destroyApp, processAlive, visit, waitFor, waitForUp } from "../support/slugs.ts";

// A host agent that is replaced (an upgrade), dies or is restarted must come back to exactly
// the desired dynos: running ones adopted by the next agent, nothing twice, nothing missing.
// The app runs on a host of its own (with room for just its two dynos, so the platform
// never places other apps' dynos there).

const unique = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

interface RunningAgent {
  child: ChildProcess;
  url: string;
  startedAt: Date;
  exited: Promise<number | null>;
  output: () => string;
}

/** Runs `dynoplane host` as a separate process, as an operator would, from the checkout at `root`. */
async function startAgentProcess(secret: string, workDir: string, root = ROOT): Promise<RunningAgent> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    path.join(root, "bin", "dynoplane.js"),
    "host",
    "--control-plane",
    platform().apiUrl,
    "--port",
    String(port),
    "--listen",
    "127.0.0.1",
    "--public-url",
    url,
    "--work-dir",
    workDir,
    "--ca",
    platform().caPath,
    "--capacity-mb",
    "1024",
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DYNOPLANE_HOST_SECRET: secret } });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, url, startedAt: new Date(), exited, output: () => output };
}

/**
 * A checkout of the next release: this one's sources with the patch version one up (the
 * agent reports its package's version), sharing its installed packages.
 */
function nextRelease(): { root: string; version: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-next-"));
  for (const entry of ["bin", "src", "tsconfig.json"]) cpSync(path.join(ROOT, entry), path.join(root, entry), { recursive: true });
  symlinkSync(path.join(ROOT, "node_modules"), path.join(root, "node_modules"));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
  const [major, minor, patch] = String(pkg.version).split(".").map(Number);
  const version = `${major}.${minor}.${patch! + 1}`;
  writeFileSync(path.join(root, "package.json"), JSON.stringify({ ...pkg, version }, null, 2));
  return { root, version };
}

/** The host's row as the control plane sees it. */
async function hostRow(hostId: string) {
  const [row] = await (await db()).select().from(hosts).where(eq(hosts.id, hostId));
  return row!;
}

/** Waits for a heartbeat from `agent` (at its URL) later than `after`. */
async function waitForHeartbeat(hostId: string, agent: RunningAgent, after = agent.startedAt) {
  return waitFor(
    () => `a heartbeat from ${agent.url}; agent output:\n${agent.output()}`,
    async () => {
      const row = await hostRow(hostId);
      return row.state === "up" && row.url === agent.url && row.lastHeartbeatAt && row.lastHeartbeatAt > after ? row : false;
    },
  );
}

afterAll(closeDb);

describe("restarting a host agent", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let hostId: string;
  let secret: string;
  let agent: RunningAgent | undefined;
  const workDir = path.join(os.tmpdir(), `dynoplane-agent-restart-${unique()}`);

  /** This agent's sandboxes live in a cgroup group named after its work dir (see src/agent/sandbox). */
  const group = `/dynoplane-${agentTag(workDir)}/`;
  /**
   * The app's live server.js processes under this test's agent, each with the directory it
   * runs in (in its sandbox). The platform's own agent may briefly run the same dynos: they
   * are placed there first and moved here on purpose.
   */
  const running = () =>
    appProcesses(app.name)
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(group);
        } catch {
          return false; // exited meanwhile
        }
      })
      .map((pid) => ({ pid, cwd: readlinkSync(`/proc/${pid}/cwd`) }));
  /** Waits until exactly the two web dynos run on this host, as fresh processes, and both answer. */
  const converged = async (old: number[]) => {
    const fresh = await waitFor(
      "exactly two new processes",
      () => {
        const procs = running();
        return procs.length === 2 && procs.every((p) => !old.includes(p.pid) && p.cwd === "/app") ? procs : false;
      },
      120_000,
    );
    await waitForUp(user.token, app.name, ["web.1", "web.2"], 120_000);
    await waitFor("both dynos answering", async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await visit(app.name);
        if (r.status === 200 && fresh.some((p) => p.pid === r.json!.pid)) seen.add(r.json!.dyno);
      }
      return seen.size === 2;
    });
    return fresh.map((p) => p.pid).sort((a, b) => a - b);
  };

  beforeAll(async () => {
    user = await makeAccount();
    app = await makeApp(user);
    ({
      host: { id: hostId },
      secret,
    } = await createHost(await db(), `runtime-${unique()}`));
    agent = await startAgentProcess(secret, workDir);
    await waitForHeartbeat(hostId, agent);

    await deploySlug(user.token, app.name);
    const scaled = await api(`/apps/${app.name}/formation`, {
      method: "PATCH",
      token: user.token,
      body: { updates: [{ type: "web", quantity: 2, size: "Standard-1X" }] },
    });
    expect(scaled.status).toBe(200);
    // Placement prefers the host with the most room; this app's dynos are moved here on purpose.
    await (await db()).update(dynos).set({ hostId }).where(eq(dynos.appId, app.id));
    await converged([]);
  });

  afterAll(async () => {
    if (user && app) await destroyApp(user.token, app.name);
    if (agent) {
      agent.child.kill("SIGTERM");
      await agent.exited;
    }
    if (hostId) await (await db()).delete(hosts).where(inArray(hosts.id, [hostId]));
    rmSync(workDir, { recursive: true, force: true });
    for (const cleanup of cleanups) cleanup();
  });
  const cleanups: Array<() => void> = [];

  /** Requests to the app through the router, one after another, until `stop`: how many failed of how many. */
  const requestLoop = () => {
    let looping = true;
    let failed = 0;
    let total = 0;
    const done = (async () => {
      while (looping) {
        const r = await visit(app.name).catch(() => null);
        total++;
        if (r?.status !== 200) failed++;
      }
    })();
    return {
      async stop() {
        looping = false;
        await done;
        return { failed, total };
      },
    };
  };

  it("on SIGUSR2 hands its dynos to an agent of the next release: the same processes answer throughout, nothing starts twice", async () => {
    const next = nextRelease();
    cleanups.push(() => rmSync(next.root, { recursive: true, force: true }));
    const before = running()
      .map((p) => p.pid)
      .sort((a, b) => a - b);
    expect(before).toHaveLength(2);
    const loop = requestLoop();
    await new Promise((r) => setTimeout(r, 500));
    agent!.child.kill("SIGUSR2");
    expect(await agent!.exited).toBe(0);
    expect(agent!.output()).toMatch(/handed 2 running dynos over to the next agent/);
    // The old agent is gone and its dynos are not.
    expect(before.every(processAlive)).toBe(true);

    agent = await startAgentProcess(secret, workDir, next.root);
    const row = await waitForHeartbeat(hostId, agent);
    expect(row.agentVersion).toBe(next.version);
    expect(next.version).not.toBe(AGENT_VERSION);
    expect(agent.output()).toMatch(/adopted 2 running dynos/);
    await waitForUp(user.token, app.name, ["web.1", "web.2"], 30_000);
    const seenAt = (await hostRow(hostId)).lastHeartbeatAt!;
    const later = await waitForHeartbeat(hostId, agent, seenAt);
    await waitForHeartbeat(hostId, agent, later.lastHeartbeatAt!);
    const { failed, total } = await loop.stop();
    console.log(`hand-over to ${next.version}: ${failed} failed of ${total} requests`);
    expect(
      running()
        .map((p) => p.pid)
        .sort((a, b) => a - b),
    ).toEqual(before);
    expect(total).toBeGreaterThan(20);
    expect(failed).toBe(0);
  });

  it("after a SIGKILL of the agent, its dynos run on and the new agent adopts them: nothing starts twice", async () => {
    const before = running()
      .map((p) => p.pid)
      .sort((a, b) => a - b);
    expect(before).toHaveLength(2);
    const { agentSession } = await hostRow(hostId);
    expect(agentSession).toMatch(/^[0-9a-f-]{36}$/);
    agent!.child.kill("SIGKILL");
    await agent!.exited;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(before.every(processAlive)).toBe(true);

    agent = await startAgentProcess(secret, workDir);
    // A new session: the control plane forgets the old agent's unreported one-off dynos at once.
    expect((await waitForHeartbeat(hostId, agent)).agentSession).not.toBe(agentSession);
    await waitForUp(user.token, app.name, ["web.1", "web.2"], 30_000);
    // Still exactly those two after further heartbeats.
    const seenAt = (await hostRow(hostId)).lastHeartbeatAt!;
    const later = await waitForHeartbeat(hostId, agent, seenAt);
    await waitForHeartbeat(hostId, agent, later.lastHeartbeatAt!);
    expect(
      running()
        .map((p) => p.pid)
        .sort((a, b) => a - b),
    ).toEqual(before);
    expect(appProcesses(app.name).filter((pid) => before.includes(pid))).toEqual(before);
  });

  it("after a graceful stop, leaves no dyno behind, and a new agent starts the desired dynos again", async () => {
    const before = running().map((p) => p.pid);
    expect(before).toHaveLength(2);
    agent!.child.kill("SIGTERM");
    expect(await agent!.exited).toBe(0);
    agent = undefined;
    expect(appProcesses(app.name)).toEqual([]);

    agent = await startAgentProcess(secret, workDir);
    await waitForHeartbeat(hostId, agent);
    const after = await converged(before);
    const seenAt = (await hostRow(hostId)).lastHeartbeatAt!;
    const later = await waitForHeartbeat(hostId, agent, seenAt);
    await waitForHeartbeat(hostId, agent, later.lastHeartbeatAt!);
    expect(appProcesses(app.name)).toEqual(after);
  });
});
