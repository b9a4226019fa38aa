import { readFileSync } from "node:fs";
import path from "node:path";
import { checkServerIdentity } from "node:tls";
import { Agent, fetch, request, type Response } from "undici";
import { afterAll, inject } from "vitest";
import { fireScheduled } from "../../src/local/cron.ts";
import { controlSocketPath } from "../../src/local/worker.ts";

export const platform = () => inject("platform");

/** The Worker bundle the platform serves (made once at its start); other workerds of a run serve the same. */
export const platformBundle = () => path.join(platform().home, "worker", "bundle", "index.js");

/**
 * Fires the platform Worker's scheduled handler once, as its every-10-minutes cron trigger
 * does, at `time`; resolves when the run finished, and fails when it threw.
 */
export async function fireCron(time = new Date()): Promise<void> {
  const outcome = await fireScheduled(controlSocketPath(path.join(platform().home, "worker")), "*/10 * * * *", time);
  if (!outcome.ok) throw new Error(`the scheduled run ended with ${outcome.outcome}`);
}

/**
 * A maker of HTTP agents of their own (own connections, trusting the platform's CA), all
 * closed after the test file: for tests about what one connection does to the next.
 */
export function ownAgents(): () => Agent {
  const agents: Agent[] = [];
  afterAll(() => Promise.all(agents.map((a) => a.close())));
  return () => {
    const made = new Agent({ connect: { ca: readFileSync(platform().caPath) } });
    agents.push(made);
    return made;
  };
}

let agent: Agent | undefined;
/** An HTTP agent that trusts the platform's local CA and reaches `*.localhost` on 127.0.0.1. */
export function tlsAgent(): Agent {
  agent ??= new Agent({
    connect: {
      ca: readFileSync(platform().caPath),
      lookup: (_host, _opts, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]),
    },
  });
  return agent;
}

export interface ApiCall {
  method?: string;
  token?: string | null;
  body?: unknown;
  /** Sent as-is (not JSON-encoded). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface ApiResult<T = any> {
  status: number;
  headers: Response["headers"];
  body: T;
  text: string;
}

/** Calls the Platform API the way the heroku CLI does (Accept v3, Bearer token, JSON). */
export async function api<T = any>(path: string, call: ApiCall = {}): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: "application/vnd.heroku+json; version=3", ...call.headers };
  if (call.token) headers.Authorization = `Bearer ${call.token}`;
  let body: string | undefined;
  if (call.rawBody !== undefined) body = call.rawBody;
  else if (call.body !== undefined) {
    body = JSON.stringify(call.body);
    headers["Content-Type"] ??= "application/json";
  }
  const method = call.method ?? "GET";
  const send = () => fetch(platform().apiUrl + path, { method, headers, body, dispatcher: tlsAgent() });
  // A kept-alive connection the server closed as the request went out: a read is sent again, as HTTP allows (RFC 9112 9.3.1).
  const res = await send().catch((err: Error & { cause?: { code?: string } }) => {
    if ((method === "GET" || method === "HEAD") && err.cause?.code === "UND_ERR_SOCKET") return send();
    throw err;
  });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get("content-type") ?? "").includes("json")) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** A GET of any URL through the platform's TLS (app hosts included). */
export async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers, dispatcher: tlsAgent() });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

let hostAgent: Agent | undefined;
/**
 * A request to the platform's port with another Host (an app's custom domain), over TLS to
 * the platform's own name, as DNS pointing that domain here (or a proxy in front) would make it.
 */
export async function visitHost(host: string, path = "/") {
  // undici names the Host header's domain in TLS; the certificate is checked for the platform's own name instead.
  hostAgent ??= new Agent({ connect: { ca: readFileSync(platform().caPath), checkServerIdentity: (_name, cert) => checkServerIdentity("localhost", cert) } });
  const res = await request(`${platform().apiUrl}${path}`, { headers: { host }, dispatcher: hostAgent });
  return { status: res.statusCode, text: await res.body.text() };
}
