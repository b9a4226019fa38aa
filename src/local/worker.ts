import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import fs from "node:fs/promises";
import https from "node:https";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawnService } from "./child.ts";
import { keepAlive, type KeptAlive } from "./keep-alive.ts";
import type { LocalTls } from "./tls.ts";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface LocalWorker {
  stop(): Promise<void>;
  /** The running wrangler (a new one after it was started again). */
  pid(): number | undefined;
  /** Everything wrangler printed, for diagnosing a failed start. */
  output(): string;
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

/** How often the Worker's health is checked, and after how many failures in a row wrangler is restarted. */
const HEALTH_EVERY_MS = 2_000;
const HEALTH_FAILURES = 3;

/**
 * wrangler outlives a workerd that died: then nothing answers. Three failed health checks
 * in a row (each allowed 10 s, so a merely busy Worker is not mistaken for a dead one) end
 * wrangler's process group, and `keepAlive` starts it again.
 */
function watchHealth(port: number, tls: LocalTls, kept: KeptAlive): NodeJS.Timeout {
  let failures = 0;
  let checking = false;
  const timer = setInterval(() => {
    if (checking) return;
    checking = true;
    const child = kept.current();
    void probe(port, tls, "/health", 10_000)
      .then(
        (status) => status === 200,
        () => false,
      )
      .then((ok) => {
        checking = false;
        if (ok || child !== kept.current() || child.exited()) return void (failures = 0);
        if (++failures < HEALTH_FAILURES) return;
        failures = 0;
        console.error(`dynoplane: the Worker stopped answering (${HEALTH_FAILURES} health checks); restarting wrangler`);
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

/** A single-quoted .env value: taken literally by wrangler's parser (double quotes would unescape). */
function envFileValue(value: string): string {
  if (/['\n\r]/.test(value)) throw new Error("Worker variables for wrangler dev must not contain quotes or newlines");
  return `'${value}'`;
}

/**
 * Runs the control plane Worker with `wrangler dev` (workerd, local Durable Objects and
 * R2 persisted in `stateDir`), serving HTTPS with the local certificate on 127.0.0.1.
 */
export async function startWorker(opts: {
  port: number;
  tls: LocalTls;
  vars: Record<string, string>;
  stateDir: string;
  quiet?: boolean;
}): Promise<LocalWorker> {
  // Durable Object storage and R2 blobs (every app's slugs and logs) are the platform's alone.
  await fs.mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  await fs.chmod(opts.stateDir, 0o700);
  const envFile = path.join(opts.stateDir, "worker.env");
  await fs.writeFile(
    envFile,
    Object.entries(opts.vars)
      .map(([k, v]) => `${k}=${envFileValue(v)}`)
      .join("\n") + "\n",
    { mode: 0o600 },
  );
  const wrangler = path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
  // Serve a bundle made once at start: edits to the sources do not reload a running platform.
  const bundleDir = path.join(opts.stateDir, "bundle");
  const bundled = spawnSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", bundleDir, "--config", path.join(ROOT, "wrangler.toml")], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (bundled.status !== 0) throw new Error(`bundling the Worker failed:\n${bundled.stdout}\n${bundled.stderr}`);
  const args = [
    wrangler,
    "dev",
    path.join(bundleDir, "index.js"),
    "--no-bundle",
    "--config",
    path.join(ROOT, "wrangler.toml"),
    "--ip",
    "127.0.0.1",
    "--port",
    String(opts.port),
    "--local-protocol",
    "https",
    "--https-key-path",
    opts.tls.keyPath,
    "--https-cert-path",
    opts.tls.certPath,
    "--persist-to",
    opts.stateDir,
    "--env-file",
    envFile,
    "--inspector-port",
    "0",
    "--show-interactive-dev-session=false",
    // Quiet only stops the echo: what the Worker logs (its scheduled runs' JSON lines) is kept.
    "--log-level",
    "log",
  ];
  // workerd trusts public CAs; the local CA is added so the Worker can reach local HTTPS endpoints (log drains in tests).
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: opts.tls.caPath };
  // Kept alive on the same port: the CLI, the agent and the dashboard name it.
  const kept = keepAlive("the Worker (wrangler dev)", () => spawnService(process.execPath, args, { cwd: ROOT, env, quiet: opts.quiet }));
  const service = kept.current();
  const stop = () => kept.stop(5000);

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (service.exited()) throw new Error(`wrangler dev exited during start-up:\n${service.output()}`);
    const status = await probe(opts.port, opts.tls).catch(() => 0);
    if (status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`wrangler dev did not answer on port ${opts.port} within 60 s:\n${service.output()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const health = watchHealth(opts.port, opts.tls, kept);
  return {
    stop: async () => {
      clearInterval(health);
      await stop();
    },
    output: () => kept.current().output(),
    pid: () => kept.current().child.pid,
  };
}
