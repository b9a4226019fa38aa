import type { PythonBuildSettings } from "../agent/builder/python.ts";
import { spawnService } from "./child.ts";
import { keepAlive } from "./keep-alive.ts";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { hosts } from "../db/schema/index.ts";
import { sha256Hex } from "../lib/bytes.ts";
import { createHost, generateHostSecret } from "../services/fleet/hosts.ts";
import { freePort } from "../node/ports.ts";
import type { LocalTls } from "./tls.ts";
import { ROOT } from "./worker.ts";

/**
 * The agent's work dir: in the platform home, root's alone (the agent refuses one that is a
 * link or someone else's). Tenants never see it: dynos and builds run in sandboxes that
 * show them /app and nothing of the host's paths.
 */
export function agentWorkDir(home: string): string {
  return path.join(path.resolve(home), "agent");
}

export interface LocalHost {
  hostId: string;
  url: string;
  stop(): Promise<void>;
  output(): string;
  /** The running agent process (a new one after it was restarted). */
  pid(): number | undefined;
  /** How many times the agent was started again after dying. */
  restarts(): number;
}

/**
 * Registers this machine as a host (a fresh secret on every start: only its hash is
 * stored) and runs `dynoplane host` as a child process that reports to the local
 * control plane. Resolves once the agent's first heartbeat has arrived.
 */
export async function startLocalHost(opts: {
  home: string;
  databaseUrl: string;
  apiUrl: string;
  /** The local CA (the agent trusts the control plane by it) and the certificate it signed
   * for 127.0.0.1, which the rendezvous server of `heroku run` serves. */
  tls: Pick<LocalTls, "caPath" | "certPath" | "keyPath">;
  quiet?: boolean;
  unsafeNoSandbox?: boolean;
  /** `address:port` of services on this machine its dynos may reach (the add-on database server). */
  allowServices?: string[];
  /** Where its Python builds get packages. */
  python?: Partial<PythonBuildSettings>;
  /** Seconds between its dynos' metrics samples (default the agent's, Heroku's 20). */
  metricsEveryS?: number;
}): Promise<LocalHost> {
  const handle = await openDb(opts.databaseUrl);
  let hostId: string;
  const secret = generateHostSecret();
  try {
    const [existing] = await handle.db.select({ id: hosts.id }).from(hosts).where(eq(hosts.name, "local"));
    if (existing) {
      await handle.db
        .update(hosts)
        .set({ secretHash: await sha256Hex(secret), updatedAt: sql`now()` })
        .where(eq(hosts.id, existing.id));
      hostId = existing.id;
    } else {
      const created = await createHost(handle.db, "local", secret);
      hostId = created.host.id;
    }
  } finally {
    await handle.close();
  }

  const port = await freePort();
  const rendezvousPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    path.join(ROOT, "bin", "dynoplane.js"),
    "host",
    "--control-plane",
    opts.apiUrl,
    "--port",
    String(port),
    "--listen",
    "127.0.0.1",
    "--public-url",
    url,
    "--work-dir",
    agentWorkDir(opts.home),
    "--ca",
    opts.tls.caPath,
    "--rendezvous-port",
    String(rendezvousPort),
    "--rendezvous-cert",
    opts.tls.certPath,
    "--rendezvous-key",
    opts.tls.keyPath,
    ...(opts.allowServices ?? []).flatMap((s) => ["--allow-service", s]),
    ...(opts.python?.packages ? ["--python-packages", opts.python.packages] : []),
    ...(opts.python?.index ? ["--python-index", opts.python.index] : []),
    ...(opts.python?.runtimes ? ["--python-runtimes", opts.python.runtimes] : []),
    ...(opts.python?.strictVersions ? ["--python-strict-versions"] : []),
    ...(opts.metricsEveryS ? ["--metrics-every", String(opts.metricsEveryS)] : []),
    ...(opts.unsafeNoSandbox ? ["--unsafe-no-sandbox"] : []),
  ];
  // Kept alive: an agent that dies is started again on the same port and secret; it adopts
  // the dynos still running and converges on the desired ones at its first heartbeat.
  const kept = keepAlive(
    "the host agent",
    () => spawnService(process.execPath, args, { cwd: ROOT, env: { ...process.env, DYNOPLANE_HOST_SECRET: secret }, label: "host", quiet: opts.quiet }),
    undefined,
    // Kept alive once it has reported: one that cannot start (a missing tool) would only fail again.
    { armed: false },
  );
  const service = kept.current();
  // The agent stops its dynos first (SIGTERM, SIGKILL after 30 s).
  const stop = () => kept.stop(40_000);

  const deadline = Date.now() + 30_000;
  const check = await openDb(opts.databaseUrl);
  try {
    for (;;) {
      if (service.exited()) {
        await stop();
        throw new Error(`the host agent exited during start-up:\n${service.output()}`);
      }
      const [row] = await check.db.select({ url: hosts.url, state: hosts.state }).from(hosts).where(eq(hosts.id, hostId));
      if (row?.state === "up" && row.url === url) break;
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`the host agent did not report within 30 s:\n${service.output()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await check.close();
  }
  kept.arm();
  return { hostId, url, stop, output: () => kept.current().output(), pid: () => kept.current().child.pid, restarts: kept.restarts };
}
