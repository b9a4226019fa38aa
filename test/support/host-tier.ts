import { clocksOf } from "../../src/lib/clocks.ts";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Agent, fetch } from "undici";
import { agentTag, LEASE_DIR } from "../../src/agent/sandbox/network.ts";
import { APPS_DOMAIN } from "../../src/local/cli-env.ts";
import { ensureLocalTls, type LocalTls } from "../../src/local/tls.ts";
import { startWorker, type LocalWorker } from "../../src/local/worker.ts";
import { freePort } from "../../src/node/ports.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { type ApiCall, type ApiResult, platformBundle } from "./api.ts";
import { createOwnDatabase, type OwnDatabase, throwawaySigningKey } from "./own-database.ts";
import { callApi } from "./second-worker.ts";
import { slugArchive } from "./slugs.ts";

/** The fleet tier's clocks: a silent host is down after 15 s (five missed heartbeats, with room for a busy machine), the fleet watch looks every 2 s, H12 after 10 s. */
export const FLEET_TIER_CLOCK_VARS = { HOST_TIMEOUT_S: "15", FLEET_CHECK_S: "2", ROUTER_TIMEOUT_S: "10" };
export const FLEET_TIER_CLOCKS = clocksOf(FLEET_TIER_CLOCK_VARS);

/**
 * A fleet on one machine: a control plane (the platform's Worker on a database of its own)
 * and host agents that each run in a network namespace of their own, made by the test and
 * joined to this machine by a veth pair on a private /30 (10.251.<n>.0), as separate
 * machines would be. The control plane listens where the agents reach it; nothing else of
 * this machine is in their namespaces.
 */
export interface Fleet {
  db: OwnDatabase;
  tls: LocalTls;
  port: number;
  /** The Platform API of the fleet's control plane. */
  api<T = any>(pathname: string, call?: ApiCall): Promise<ApiResult<T>>;
  /** Trusts the fleet's CA; reaches `localhost` and `*.apps.localhost` on 127.0.0.1. */
  dispatcher: Agent;
  /** GET an app's URL through the router; resolves with the status (0 when the connection failed). */
  visit(app: string, pathname?: string): Promise<number>;
  hosts: FleetHost[];
  /** What the control plane's workerd printed (its errors among it). */
  output(): string;
  stop(): Promise<void>;
}

export interface FleetHost {
  name: string;
  id: string;
  namespace: string;
  /** The agent's address in its namespace. */
  address: string;
  /** Kills the agent and every process of its dynos, and deletes its namespace: the machine is gone. */
  lose(): Promise<void>;
  /** Cuts the machine off the network (its link down), with everything on it still running. */
  partition(): void;
  /** Brings its link back. */
  reconnect(): void;
  /** How many processes its dynos have (in its agent's cgroups). */
  dynoProcesses(): number;
  /** The pids of its dynos' processes (in its agent's cgroups). */
  dynoPids(): number[];
  /**
   * Replaces the agent as an upgrade does: SIGUSR2 (it exits, its dynos run on), then a new
   * agent on the same work dir. Resolves with the old agent's exit code once the new one is started.
   */
  upgrade(): Promise<number | null>;
  output(): string;
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] }).toString();

/** Makes namespace `ns` joined to this machine on 10.251.<n>.0/30: this side .1, the namespace .2. */
function makeNamespace(ns: string, n: number, outside: string, inside: string) {
  run("ip", ["netns", "add", ns]);
  run("ip", ["link", "add", outside, "type", "veth", "peer", "name", inside]);
  run("ip", ["link", "set", inside, "netns", ns]);
  run("ip", ["addr", "add", `10.251.${n}.1/30`, "dev", outside]);
  run("ip", ["link", "set", outside, "up"]);
  run("ip", ["netns", "exec", ns, "ip", "addr", "add", `10.251.${n}.2/30`, "dev", inside]);
  run("ip", ["netns", "exec", ns, "ip", "link", "set", inside, "up"]);
  run("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
}

function removeNamespace(ns: string, outside: string) {
  try {
    run("ip", ["link", "del", outside]);
  } catch {}
  try {
    run("ip", ["netns", "del", ns]);
  } catch {}
}

/** Starts a control plane and `count` agents, each in a namespace of its own, with `capacityMb` each. */
export async function startFleet(count: number, capacityMb: number): Promise<Fleet> {
  const tag = Math.floor(Math.random() * 1e6).toString(36);
  const dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-fleet-"));
  const db = await createOwnDatabase("fleet");
  const names = Array.from({ length: count }, (_, i) => ({
    n: 1 + i,
    ns: `dpfleet-${tag}-${i}`,
    outside: `dpf${tag}${i}a`.slice(0, 15),
    inside: `dpf${tag}${i}b`.slice(0, 15),
  }));
  const tls = await ensureLocalTls(path.join(dir, "tls"), ["localhost", "127.0.0.1", `*.${APPS_DOMAIN}`, ...names.map((h) => `10.251.${h.n}.1`)]);
  const port = await freePort();
  let worker: LocalWorker | undefined;
  const agents: ChildProcess[] = [];
  const hosts: FleetHost[] = [];
  // Trusts the fleet's CA and reaches `localhost` and `*.apps.localhost` on 127.0.0.1.
  const dispatcher = new Agent({ connect: { ca: readFileSync(tls.caPath), lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) } });
  const stop = async () => {
    for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill("SIGTERM");
    await Promise.all(agents.map((a) => (a.exitCode === null && a.signalCode === null ? new Promise((r) => a.once("exit", r)) : null)));
    for (const h of names) removeNamespace(h.ns, h.outside);
    try {
      run("ip", ["route", "del", "blackhole", "10.251.0.0/16"]);
    } catch {}
    // A lost host's agent had no chance to take its sandboxes' mounts down, nor their
    // network namespaces and its lease on a dyno subnet.
    unmountUnder(dir);
    for (const h of names) forgetAgentNetwork(path.join(dir, `host-${h.n}`));
    await worker?.stop();
    await dispatcher.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Addresses of a lost host lead nowhere: never out through this machine's default route.
    run("ip", ["route", "replace", "blackhole", "10.251.0.0/16"]);
    for (const h of names) makeNamespace(h.ns, h.n, h.outside, h.inside);
    worker = await startWorker({
      port,
      tls,
      stateDir: path.join(dir, "worker"),
      quiet: true,
      bundle: platformBundle(),
      // Where the agents reach it: this machine's end of each namespace's veth (and loopback for the test).
      listenAddress: "0.0.0.0",
      vars: {
        DATABASE_URL: db.url,
        COMMAND_SIGNING_KEY: await throwawaySigningKey(),
        API_HOST: `localhost:${port}`,
        APPS_DOMAIN,
        PUBLIC_PORT_SUFFIX: `:${port}`,
        CLIENT_ADDRESS_HEADER: "",
        RATE_LIMIT_PER_HOUR: "1000000",
        // One account fills the fleet here, to test placement: it may take all of its memory.
        ACCOUNT_LIMIT_MEMORY_SHARE: "1",
        // The fleet's clocks, faster (see src/lib/clocks.ts): a lost host is over in seconds.
        ...FLEET_TIER_CLOCK_VARS,
      },
    });
    for (const h of names) {
      const { host, secret } = await createHost(db.handle.db, `fleet-${h.n}`);
      const workDir = path.join(dir, `host-${h.n}`);
      let output = "";
      // nsenter joins the network namespace only: the agent keeps this machine's mounts (its cgroups).
      const startAgent = () => {
        const agent = spawn(
          "nsenter",
          [
            `--net=/run/netns/${h.ns}`,
            process.execPath,
            "bin/dynoplane.js",
            "host",
            "--control-plane",
            `https://10.251.${h.n}.1:${port}`,
            "--ca",
            tls.caPath,
            "--port",
            "5100",
            "--public-url",
            `http://10.251.${h.n}.2:5100`,
            "--work-dir",
            workDir,
            "--capacity-mb",
            String(capacityMb),
          ],
          { env: { ...process.env, DYNOPLANE_HOST_SECRET: secret }, stdio: ["ignore", "pipe", "pipe"], detached: true },
        );
        agent.stdout!.on("data", (b) => (output += b.toString()));
        agent.stderr!.on("data", (b) => (output += b.toString()));
        agents.push(agent);
        return agent;
      };
      let agent = startAgent();
      hosts.push({
        name: host.name,
        id: host.id,
        namespace: h.ns,
        address: `10.251.${h.n}.2`,
        output: () => output,
        partition: () => void run("ip", ["link", "set", h.outside, "down"]),
        reconnect: () => void run("ip", ["link", "set", h.outside, "up"]),
        dynoProcesses: () => groupPids(workDir).length,
        dynoPids: () => groupPids(workDir).sort((a, b) => a - b),
        async upgrade() {
          const old = agent;
          const exited = new Promise<number | null>((r) => old.once("exit", (code) => r(code)));
          old.kill("SIGUSR2");
          const code = await exited;
          agent = startAgent();
          return code;
        },
        async lose() {
          // The agent and all it started (its dynos' cgroups are under its work dir's group).
          try {
            process.kill(-agent.pid!, "SIGKILL");
          } catch {}
          await new Promise((r) => (agent.exitCode === null && agent.signalCode === null ? agent.once("exit", r) : r(null)));
          killGroup(workDir);
          removeNamespace(h.ns, h.outside);
        },
      });
    }
    return {
      db,
      tls,
      port,
      hosts,
      api: (pathname, call) => callApi(`https://localhost:${port}`, pathname, call, dispatcher),
      dispatcher,
      output: () => worker?.output() ?? "",
      async visit(app, pathname = "/") {
        try {
          const res = await fetch(`https://${app}.${APPS_DOMAIN}:${port}${pathname}`, { dispatcher, signal: AbortSignal.timeout(30_000) });
          await res.arrayBuffer();
          return res.status;
        } catch {
          return 0;
        }
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The processes in the cgroups of the agent whose work dir is `workDir` (its sandboxes' group). */
function groupPids(workDir: string): number[] {
  const tag = agentTag(workDir);
  const pids = new Set<number>();
  for (const root of ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]) {
    let out = "";
    try {
      out = run("find", [path.join(root, `dynoplane-${tag}`), "-name", "cgroup.procs"]);
    } catch {
      continue;
    }
    for (const file of out.split("\n").filter(Boolean)) {
      for (const pid of readFileSync(file, "utf8").split("\n").filter(Boolean)) pids.add(Number(pid));
    }
  }
  return [...pids];
}

/** Deletes the dyno namespaces and the subnet lease of the agent whose work dir is `workDir`. */
function forgetAgentNetwork(workDir: string) {
  const tag = agentTag(workDir);
  for (const name of readdirOr("/run/netns")) {
    if (!name.startsWith(`dp${tag}-`)) continue;
    try {
      run("ip", ["netns", "del", name]);
    } catch {}
  }
  for (const lease of readdirOr(LEASE_DIR)) {
    const file = path.join(LEASE_DIR, lease);
    try {
      if ((JSON.parse(readFileSync(file, "utf8")) as { tag?: string }).tag === tag) rmSync(file, { force: true });
    } catch {}
  }
}

function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Kills every process of the agent's dynos (they outlive a SIGKILLed agent). */
function killGroup(workDir: string) {
  for (const pid of groupPids(workDir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
}

/** Deploys the runtime test app's slug to `app` on the fleet (the Slug API, then a release). */
export async function deployToFleet(fleet: Fleet, token: string, app: string): Promise<void> {
  const slug = await fleet.api(`/apps/${app}/slugs`, {
    method: "POST",
    token,
    body: { process_types: { web: `node server.js ${app}` }, commit: "0123456789abcdef" },
  });
  if (slug.status !== 201) throw new Error(`creating a slug failed: ${slug.status} ${slug.text}`);
  const put = await fetch(slug.body.blob.url, {
    method: "PUT",
    body: slugArchive(),
    headers: { "Content-Type": "application/gzip" },
    dispatcher: fleet.dispatcher,
  });
  if (put.status !== 200) throw new Error(`uploading the slug failed: ${put.status} ${await put.text()}`);
  const release = await fleet.api(`/apps/${app}/releases`, { method: "POST", token, body: { slug: slug.body.id } });
  if (release.status !== 201) throw new Error(`releasing failed: ${release.status} ${release.text}`);
}

/** Detaches every mount under `dir`, deepest first. */
function unmountUnder(dir: string) {
  const mounts = readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      run("umount", ["-l", m]);
    } catch {}
  }
}
