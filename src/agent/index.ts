import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { DESIRED_DYNO, HOST_PROTOCOL, type Command, type DesiredDyno } from "../protocol/host.ts";
import { Builder } from "./builder/builder.ts";
import { Transfers } from "./transfers.ts";
import { controlPlaneBuildIO } from "./builder/io.ts";
import type { PythonBuildSettings } from "./builder/python.ts";
import { CommandAuth } from "./command-auth.ts";
import { ControlPlaneClient } from "./control-plane.ts";
import type { DynoUser } from "./dyno-user.ts";
import { LogBuffer } from "./log-buffer.ts";
import { LogShipper } from "./log-shipper.ts";
import type { BackoffSchedule } from "./reconcile.ts";
import { createRendezvousServer } from "./rendezvous.ts";
import { createAgentServer } from "./server.ts";
import { downloadSlug, slugCachePath } from "./slug.ts";
import { SandboxHost } from "./sandbox/index.ts";
import { createSupervisor, type Supervisor } from "./supervisor.ts";
import { AGENT_VERSION } from "./version.ts";

export { AGENT_VERSION };

/** Heroku's runtime metrics come every 20 s. */
export const METRICS_INTERVAL_MS = 20_000;

/** Everything the agent is told; nothing is read from globals. */
export interface AgentConfig {
  /** The control plane's origin; without it the agent only serves commands (see `commandKey`). */
  controlPlaneUrl?: string;
  hostSecret?: string;
  /** PEM file of the CA that signed the control plane's certificate. */
  caFile?: string;
  listenHost?: string;
  /** 0 picks a free port. */
  listenPort?: number;
  /** Where the control plane reaches this agent; by default http://<hostname>:<port>. */
  publicUrl?: string;
  /** PEM certificate and key files: serve HTTPS. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  /**
   * The rendezvous server of attached one-off dynos (`heroku run`): its port (0 picks a free
   * one), the host name the CLI connects to (by default the public URL's), and the PEM
   * certificate and key it serves (by default the HTTPS ones). Without a certificate there
   * is no rendezvous server and `heroku run` is refused for dynos on this host.
   */
  rendezvousPort?: number;
  rendezvousHost?: string;
  rendezvousCertFile?: string;
  rendezvousKeyFile?: string;
  /** How long an attached one-off dyno waits for its client (60 s). */
  attachTimeoutMs?: number;
  /** Slug cache and instance directories. */
  workDir: string;
  /** Memory offered to dynos, in MB; by default the machine's total. */
  capacityMb?: number;
  /** First heartbeat interval; the control plane's `heartbeat_interval_ms` takes over after. */
  heartbeatMs?: number;
  /** How often dynos' usage goes to the control plane (Heroku's runtime metrics: 20 s). */
  metricsMs?: number;
  /** Overrides each dyno's boot_timeout_s. */
  bootTimeoutMs?: number;
  stopGraceMs?: number;
  backoff?: BackoffSchedule;
  /** Who dynos run as (null: the agent's own user); by default the `dyno` user when root. */
  dynoUser?: DynoUser | null;
  /**
   * Runs tenant code without sandboxes (no namespaces, no cgroups): only for a machine where
   * they cannot be made and every tenant is trusted. Without it such a machine refuses to start.
   */
  unsafeNoSandbox?: boolean;
  /** The range dyno subnets are taken from (a /16; each agent on the machine takes a /24). */
  dynoSupernet?: string;
  /** Services on this host dynos may reach (an add-on database server); nothing else of the host is. */
  allowServices?: { address: string; port: number }[];
  logBufferLines?: number;
  /** Where Python builds get packages; by default the public index. */
  python?: PythonBuildSettings;
  /** The directory holding pg_dump and pg_restore of a major version or newer (Postgres backups and restores). */
  pgClient?: (major: number) => Promise<string>;
  /** Without a control plane: the public JWK that signs commands, and this host's id. */
  commandKey?: JsonWebKey;
  hostId?: string;
  /** Where the agent reports its own trouble. */
  log?: (message: string) => void;
}

/** A running agent. */
export interface Agent {
  url: string;
  port: number;
  /** `host:port` of the rendezvous server, or null when it has none. */
  rendezvous: string | null;
  supervisor: Supervisor;
  /** Runs `build` commands; null without a control plane to fetch sources from and report to. */
  builder: Builder | null;
  /** Runs `transfer` commands (Postgres backups and restores); null without a control plane. */
  transfers: Transfers | null;
  logs: LogBuffer;
  /** Runs one heartbeat now (no-op without a control plane). */
  heartbeat(): Promise<void>;
  /** Stops serving and heartbeating, stops every dyno, ships the last lines. */
  stop(): Promise<void>;
  /**
   * Stops serving and heartbeating and ships the last lines, leaving the dynos running for
   * the next agent started on this work dir to adopt (an upgrade). Builds and attached
   * one-off dynos end. Resolves with how many dynos were handed over.
   */
  handOff(): Promise<number>;
}

/**
 * The agent's work dir holds every tenant's slugs, builds and sandboxes: root's alone (0700),
 * and refused when it is a link or belongs to someone else (a planted /tmp name, say).
 */
async function prepareWorkDir(dir: string, sandboxed: boolean): Promise<void> {
  // Without sandboxes, dynos reach their directories through it: passable, not listable.
  const mode = sandboxed ? 0o700 : 0o711;
  await fs.mkdir(dir, { recursive: true, mode });
  const st = await fs.lstat(dir);
  const me = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== me) throw new Error(`the work dir ${dir} is not a directory owned by this agent's user`);
  await fs.chmod(dir, mode);
}

/** Drops cached slugs no dyno of this host needs any more. */
async function pruneSlugs(workDir: string, keep: Set<string>): Promise<void> {
  const dir = path.join(workDir, "slugs");
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.endsWith(".tgz") && !keep.has(n.slice(0, -4))).map((n) => fs.rm(path.join(dir, n), { force: true })));
}

/** Keeps only well-formed desired dynos: one bad entry must not stop the others converging. */
function validDesired(list: unknown, log: (m: string) => void): DesiredDyno[] | null {
  if (!Array.isArray(list)) return null;
  const out: DesiredDyno[] = [];
  for (const item of list) {
    const parsed = DESIRED_DYNO.safeParse(item);
    if (parsed.success) out.push(parsed.data);
    else log(`ignoring a malformed desired dyno: ${parsed.error.message}`);
  }
  return out;
}

/**
 * Starts a host agent: the HTTP server for commands and routed requests, the supervisor,
 * and (with a control plane) the heartbeat that reconciles dynos and the log shipper.
 */
export async function startAgent(config: AgentConfig): Promise<Agent> {
  const log = config.log ?? ((m: string) => console.error(`dynoplane host: ${m}`));
  await prepareWorkDir(config.workDir, !config.unsafeNoSandbox);
  if (config.unsafeNoSandbox)
    log("WARNING: --unsafe-no-sandbox: tenant code runs without namespaces or cgroups; any tenant who can deploy can reach this host and its services");
  const sandboxes = config.unsafeNoSandbox
    ? null
    : await SandboxHost.create(config.workDir, { supernet: config.dynoSupernet, allow: config.allowServices, log });
  const logs = new LogBuffer(config.logBufferLines);
  const client = config.controlPlaneUrl
    ? new ControlPlaneClient({ url: config.controlPlaneUrl, hostSecret: config.hostSecret ?? "", caFile: config.caFile })
    : null;
  if (client && !config.hostSecret) throw new Error("a host secret is needed to talk to the control plane");

  const downloads = new Map<string, Promise<string>>();
  const slugPath = async (dyno: DesiredDyno): Promise<string> => {
    const file = slugCachePath(config.workDir, dyno.slug_id);
    if (
      await fs.access(file).then(
        () => true,
        () => false,
      )
    )
      return file;
    if (!client) throw new Error(`slug ${dyno.slug_id} is not on this host and there is no control plane to fetch it from`);
    // Dynos of one release share one download.
    let pending = downloads.get(dyno.slug_id);
    if (!pending) {
      pending = downloadSlug(client.slugRequest(dyno.slug_id), file).then(() => file);
      downloads.set(dyno.slug_id, pending);
      void pending.finally(() => downloads.delete(dyno.slug_id)).catch(() => {});
    }
    return pending;
  };

  // A state change is reported at once (routing and wakes wait on `up`), not at the next beat.
  let reportSoon: () => void = () => {};
  const supervisor = await createSupervisor({
    workDir: config.workDir,
    sink: logs.push,
    slugPath,
    user: config.dynoUser,
    sandboxes,
    bootTimeoutMs: config.bootTimeoutMs,
    stopGraceMs: config.stopGraceMs,
    backoff: config.backoff,
    attachTimeoutMs: config.attachTimeoutMs,
    onChange: () => reportSoon(),
  });
  const adopted = supervisor.summaries().length;
  if (adopted) log(`adopted ${adopted} running dyno${adopted === 1 ? "" : "s"} of the agent before this one`);
  const auth = new CommandAuth();
  if (config.commandKey) await auth.setKey(config.commandKey, config.hostId ?? "");

  let heartbeatMs = config.heartbeatMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let url = config.publicUrl ?? "";
  let rendezvous: string | null = null;
  let shipper: LogShipper | null = null;
  // Dynos never outlive their agent: a new one tells the control plane, by a new session id.
  const session = randomUUID();

  const beatOnce = async (): Promise<void> => {
    if (!client) return;
    const dynos = supervisor.observed();
    // A dyno's last output arrives before its end: the release phase's output ends its build's stream.
    if (dynos.some((d) => d.state === "down")) await shipper?.flush();
    const dropped = logs.takeDropped();
    try {
      const res = await client.heartbeat({
        agent: { version: AGENT_VERSION, protocol: HOST_PROTOCOL },
        url,
        capacity_mb: config.capacityMb ?? Math.floor(os.totalmem() / 1024 / 1024),
        dynos,
        dropped_log_lines: dropped,
        session,
        ...(rendezvous ? { rendezvous } : {}),
      });
      supervisor.acknowledge(dynos);
      await auth.setKey(res.command_key, res.host_id);
      if (res.heartbeat_interval_ms > 0) heartbeatMs = res.heartbeat_interval_ms;
      const desired = validDesired(res.desired, log);
      if (desired && !stopped) {
        supervisor.reconcile(desired);
        const keep = new Set([...desired.map((d) => d.slug_id), ...supervisor.slugIds()]);
        await pruneSlugs(config.workDir, keep);
        await supervisor.pruneUnpacked(keep);
      }
    } catch (err) {
      logs.restoreDropped(dropped);
      log(`heartbeat failed: ${(err as Error).message}`);
    }
  };
  // One heartbeat at a time; a request for another while one runs becomes one more afterwards.
  const heartbeat = (): Promise<void> => {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    clearTimeout(timer);
    inFlight = (async () => {
      do {
        again = false;
        await beatOnce();
      } while (again && !stopped);
    })().finally(() => {
      inFlight = null;
      if (client && !stopped) timer = setTimeout(() => void heartbeat(), heartbeatMs);
    });
    return inFlight;
  };

  // After the supervisor has finished its own bookkeeping for the change.
  reportSoon = () => {
    if (client && !stopped) setImmediate(() => void heartbeat());
  };

  const builder = client
    ? new Builder({
        workDir: config.workDir,
        user: supervisor.user,
        sandboxes,
        ioFor: (spec) => controlPlaneBuildIO((p) => client.hostRequest(p), spec.id),
        python: config.python,
        log,
      })
    : null;

  const transfers = client
    ? new Transfers({
        user: supervisor.user,
        sandboxes,
        hostRequest: (p) => client.hostRequest(p),
        pgClient: config.pgClient ?? (() => Promise.reject(new Error("This host has no PostgreSQL client tools configured."))),
        log,
      })
    : null;

  const onCommand = (command: Command): void => {
    if (command.op === "start") supervisor.ensure(command.dyno);
    else if (command.op === "stop") void supervisor.stop(command.dyno_id);
    else if (command.op === "build") {
      if (builder) builder.start(command.build);
      else log(`ignoring build ${command.build.id}: this agent has no control plane to fetch its source from`);
    } else if (command.op === "transfer") {
      if (transfers) transfers.start(command.transfer);
      else log(`ignoring transfer ${command.transfer.id}: this agent has no control plane to report to`);
    } else if (command.op === "cancel_transfer") transfers?.cancel(command.transfer_id);
    else void heartbeat();
  };

  const tls =
    config.tlsCertFile && config.tlsKeyFile ? { cert: readFileSync(config.tlsCertFile, "utf8"), key: readFileSync(config.tlsKeyFile, "utf8") } : undefined;
  const server = createAgentServer({ auth, activeTarget: (id) => supervisor.activeTarget(id), onCommand, tls });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listenPort ?? 0, config.listenHost ?? "0.0.0.0", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  url ||= `${tls ? "https" : "http"}://${config.listenHost && config.listenHost !== "0.0.0.0" ? config.listenHost : os.hostname()}:${port}`;

  const certFile = config.rendezvousCertFile ?? config.tlsCertFile;
  const keyFile = config.rendezvousKeyFile ?? config.tlsKeyFile;
  const rendezvousServer =
    certFile && keyFile
      ? createRendezvousServer({
          auth,
          cert: readFileSync(certFile, "utf8"),
          key: readFileSync(keyFile, "utf8"),
          attach: (dynoId, socket) => supervisor.attach(dynoId, socket),
          log,
        })
      : null;
  if (rendezvousServer) {
    await new Promise<void>((resolve, reject) => {
      rendezvousServer.once("error", reject);
      rendezvousServer.listen(config.rendezvousPort ?? 0, config.listenHost ?? "0.0.0.0", () => resolve());
    });
    const host = config.rendezvousHost ?? new URL(url).hostname;
    rendezvous = `${host}:${(rendezvousServer.address() as AddressInfo).port}`;
  } else {
    log(
      "no TLS certificate for the rendezvous server (--rendezvous-cert/--rendezvous-key or --tls-cert/--tls-key): attached one-off dynos (heroku run) cannot run on this host",
    );
  }

  shipper = client
    ? new LogShipper({ buffer: logs, send: (lines) => client.shipLogs(lines), onError: (err) => log(`shipping logs failed: ${(err as Error).message}`) })
    : null;
  shipper?.start();
  if (client) void heartbeat();
  // Dynos' usage, restarts and errors for the app's metrics (and `log-runtime-metrics` lines).
  const metricsTimer = client
    ? setInterval(() => {
        const dynos = supervisor.takeMetrics();
        if (dynos.length) client.reportMetrics({ dynos }).catch((err: unknown) => log(`reporting metrics failed: ${(err as Error).message}`));
      }, config.metricsMs ?? METRICS_INTERVAL_MS)
    : undefined;
  metricsTimer?.unref();

  /** Stops taking commands, requests and heartbeats: the first steps of a stop and of a hand-off. */
  const quiesce = async () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(metricsTimer);
    await inFlight;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };

  return {
    url,
    port,
    rendezvous,
    supervisor,
    builder,
    transfers,
    logs,
    heartbeat,
    async handOff() {
      await quiesce();
      rendezvousServer?.close();
      await Promise.all([builder?.stop(), transfers?.stop()]);
      const kept = await supervisor.release();
      // The last lines. No last heartbeat: one without the handed-over dynos would read as
      // one-off dynos gone; the next agent's first heartbeat reports them all.
      await shipper?.stop();
      client?.close();
      return kept;
    },
    async stop() {
      await quiesce();
      // Attached clients keep their connections until their dynos end, just below.
      rendezvousServer?.close();
      // Every step runs even when one before it failed: nothing may outlive the agent.
      const ended = await Promise.allSettled([supervisor.stopAll(), builder?.stop(), transfers?.stop()]);
      await sandboxes?.close();
      await shipper?.stop();
      for (const r of ended) if (r.status === "rejected") console.error(`dynoplane host: while stopping: ${String(r.reason)}`);
      // Tell the control plane the dynos are down, so it can place them elsewhere at once.
      if (client) await beatOnce();
      client?.close();
    },
  };
}
