import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type Dispatcher, fetch } from "undici";
import { APPS_DOMAIN } from "../../src/local/cli-env.ts";
import { freePort } from "../../src/node/ports.ts";
import type { LocalTls } from "../../src/local/tls.ts";
import { startWorker } from "../../src/local/worker.ts";
import { platform, platformBundle, tlsAgent, type ApiCall, type ApiResult } from "./api.ts";

export interface SecondWorker {
  port: number;
  url: string;
  /** The Platform API of this Worker, called as `api()` calls the platform's. */
  api<T = any>(path: string, call?: ApiCall): Promise<ApiResult<T>>;
  /** Everything workerd printed. */
  output(): string;
  stop(): Promise<void>;
}

/** The platform's certificate files; its CA already signs `localhost` and `127.0.0.1`. */
export function platformTls(): LocalTls {
  const dir = path.dirname(platform().caPath);
  return {
    caPath: platform().caPath,
    bundlePath: platform().bundlePath,
    certPath: path.join(dir, "server.pem"),
    keyPath: path.join(dir, "server.key"),
  };
}

/**
 * Another workerd running the same Worker, with its own port, Durable Object state and
 * variables (`vars` override the platform's defaults), for bindings and drivers that
 * the shared platform is not configured with.
 */
export async function startSecondWorker(vars: Record<string, string>, opts: { hyperdrive?: string; launcher?: string[] } = {}): Promise<SecondWorker> {
  const port = await freePort();
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-worker-"));
  const worker = await startWorker({
    port,
    tls: platformTls(),
    stateDir,
    quiet: true,
    bundle: platformBundle(),
    hyperdrive: opts.hyperdrive,
    launcher: opts.launcher,
    vars: {
      DATABASE_URL: platform().databaseUrl,
      API_HOST: `localhost:${port}`,
      APPS_DOMAIN,
      PUBLIC_PORT_SUFFIX: `:${port}`,
      ...vars,
    },
  }).catch((err) => {
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  });
  const url = `https://localhost:${port}`;
  return {
    port,
    url,
    api: (pathname, call) => callApi(url, pathname, call),
    output: worker.output,
    stop: async () => {
      await worker.stop();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** An API call to the Worker at `base`, as `api()` calls the platform's (through `dispatcher`, by default one that trusts the platform's CA). */
export async function callApi<T>(base: string, pathname: string, call: ApiCall = {}, dispatcher: Dispatcher = tlsAgent()): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: "application/vnd.heroku+json; version=3", ...call.headers };
  if (call.token) headers.Authorization = `Bearer ${call.token}`;
  let body = call.rawBody;
  if (body === undefined && call.body !== undefined) {
    body = JSON.stringify(call.body);
    headers["Content-Type"] ??= "application/json";
  }
  const res = await fetch(base + pathname, { method: call.method ?? "GET", headers, body, dispatcher });
  const text = await res.text();
  const json = (res.headers.get("content-type") ?? "").includes("json");
  return { status: res.status, headers: res.headers, body: (json ? JSON.parse(text) : text) as T, text };
}
