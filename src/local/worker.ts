import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import https from "node:https";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnService } from "./child.ts";
import { keepAlive, type KeptAlive } from "./keep-alive.ts";
import type { LocalTls } from "./tls.ts";
import { ownAddresses, readWranglerConfig, workerdConfig } from "./workerd-config.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface LocalWorker {
  stop(): Promise<void>;
  /** The running workerd (a new one after it was started again). */
  pid(): number | undefined;
  /** Everything workerd printed (the Worker's console), for diagnosing a failed start. */
  output(): string;
  /** The Unix socket of the control Worker (scheduled runs). */
  controlSocket: string;
  /** The bundle's main module it serves (another workerd may serve the same, see startWorker's `bundle`). */
  bundle: string;
}

/** GET https://127.0.0.1:port/path trusting the local CA; resolves with the status. */
export function probe(port: number, tls: LocalTls, pathname = "/health", timeoutMs = 5_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, path: pathname, servername: "localhost", headers: { host: `localhost:${port}` }, ca: [readFileSync(tls.caPath)] },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

const require = createRequire(import.meta.url);

/** How often the Worker's health is checked, and after how many failures in a row workerd is restarted. */
const HEALTH_EVERY_MS = 2_000;
const HEALTH_FAILURES = 3;
/** How long one health check may take before it counts as failed. */
export const HEALTH_TIMEOUT_MS = 10_000;

/**
 * A workerd that is alive but no longer answers (wedged) is ended: three failed health
 * checks in a row (each allowed `timeoutMs`, by default long enough that a merely busy
 * Worker is not mistaken for a dead one) kill its process group, and `keepAlive` starts it
 * again.
 */
function watchHealth(port: number, tls: LocalTls, kept: KeptAlive, timeoutMs: number): NodeJS.Timeout {
  let failures = 0;
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    const child = kept.current();
    void probe(port, tls, "/health", timeoutMs)
      .then(
        (status) => status === 200,
        () => false,
      )
      .then((ok) => {
        checking = false;
        if (ok || child !== kept.current() || child.exited()) return void (failures = 0);
        if (++failures < HEALTH_FAILURES) return;
        failures = 0;
        console.error(`dynoplane: the Worker stopped answering (${HEALTH_FAILURES} health checks); restarting workerd`);
        try {
          process.kill(-child.child.pid!, "SIGKILL");
        } catch {
          // Gone already.
        }
      });
  }, HEALTH_EVERY_MS);
  timer.unref();
  return timer;
}

/**
 * Bundles the Worker as `wrangler deploy` does (`--dry-run`, same build and polyfills) into
 * `outDir`; returns the bundle's main module. What runs locally is what Cloudflare runs.
 * Another wrangler configuration bundles another Worker the same way (a benchmark's floor).
 */
export function bundleWorker(outDir: string, config = path.join(ROOT, "wrangler.toml")): string {
  const wrangler = path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
  const bundled = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outDir, "--config", config], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (bundled.status !== 0) throw new Error(`bundling the Worker failed:\n${bundled.stdout}\n${bundled.stderr}`);
  const main = readdirSync(outDir).find((f) => f.endsWith(".js"));
  if (!main) throw new Error(`bundling the Worker wrote no module to ${outDir}`);
  return path.join(outDir, main);
}

/** The Unix socket through which the platform itself calls into the Worker of `stateDir` (scheduled runs). */
export function controlSocketPath(stateDir: string): string {
  return path.join(stateDir, "control.sock");
}

/**
 * Runs the control plane Worker in workerd, the open-source runtime Cloudflare publishes,
 * from a configuration generated from wrangler.toml (see workerdConfig): the bundle
 * `wrangler deploy` would upload, its Durable Objects and R2 persisted in `stateDir`, HTTPS
 * with the local certificate on 127.0.0.1, and a control socket for scheduled runs.
 */
export async function startWorker(opts: {
  port: number;
  tls: LocalTls;
  vars: Record<string, string>;
  stateDir: string;
  quiet?: boolean;
  /** A postgres:// URL for the Worker's HYPERDRIVE binding (see workerdConfig). */
  hyperdrive?: string;
  /** The address the HTTPS socket listens on (default 127.0.0.1: this machine only). */
  listenAddress?: string;
  /** A command workerd's own command line is appended to (to run it in namespaces of its own, say). */
  launcher?: string[];
  /** How long one health check may take (default HEALTH_TIMEOUT_MS). */
  healthTimeoutMs?: number;
  /** The main module of a bundle made already (a running Worker's `bundle`): served as it is, not made again. */
  bundle?: string;
}): Promise<LocalWorker> {
  // Durable Object storage and R2 blobs (every app's slugs and logs) are the platform's alone.
  await fs.mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  await fs.chmod(opts.stateDir, 0o700);
  for (const dir of ["v3/do", "v3/r2"]) await fs.mkdir(path.join(opts.stateDir, dir), { recursive: true });
  // Serve a bundle made once at start: edits to the sources do not reload a running platform.
  const bundle = opts.bundle ?? bundleWorker(path.join(opts.stateDir, "bundle"));
  const controlSocket = controlSocketPath(opts.stateDir);
  const { serializeConfig } = await import("miniflare");
  // Made once, kept in memory: it holds the Worker's secrets, and is handed to workerd on its standard input.
  const config = serializeConfig(
    workerdConfig({
      wrangler: readWranglerConfig(path.join(ROOT, "wrangler.toml")),
      bundle,
      vars: opts.vars,
      address: `${opts.listenAddress ?? "127.0.0.1"}:${opts.port}`,
      certificateChain: readFileSync(opts.tls.certPath, "utf8"),
      privateKey: readFileSync(opts.tls.keyPath, "utf8"),
      trustedCertificates: [readFileSync(opts.tls.caPath, "utf8")],
      controlSocket,
      ownAddresses: ownAddresses(),
      stateDir: opts.stateDir,
      hyperdrive: opts.hyperdrive,
    }),
  );
  const workerd: string = require("workerd").default;
  const launch = () => {
    // A socket file left by an earlier workerd would stop this one binding.
    rmSync(controlSocket, { force: true });
    // DYNOPLANE_WORKERD_INSPECTOR=PORT opens the V8 inspector (Chrome DevTools: profiles, heap) on 127.0.0.1.
    const inspector = process.env.DYNOPLANE_WORKERD_INSPECTOR ? [`--inspector-addr=127.0.0.1:${Number(process.env.DYNOPLANE_WORKERD_INSPECTOR)}`] : [];
    const argv = [workerd, "serve", "--binary", "--experimental", ...inspector, "-"];
    const [file, ...args] = [...(opts.launcher ?? []), ...argv];
    return spawnService(file!, args, { cwd: opts.stateDir, quiet: opts.quiet, input: config });
  };
  // Kept alive on the same port: the CLI, the agent and the dashboard name it.
  const kept = keepAlive("the Worker (workerd)", launch);
  const service = kept.current();
  const stop = () => kept.stop(5000);

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (service.exited()) throw new Error(`workerd exited during start-up:\n${service.output()}`);
    const status = await probe(opts.port, opts.tls).catch(() => 0);
    if (status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`workerd did not answer on port ${opts.port} within 60 s:\n${service.output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const health = watchHealth(opts.port, opts.tls, kept, opts.healthTimeoutMs ?? HEALTH_TIMEOUT_MS);
  return {
    stop: async () => {
      clearInterval(health);
      await stop();
    },
    output: () => kept.current().output(),
    pid: () => kept.current().child.pid,
    controlSocket,
    bundle,
  };
}
