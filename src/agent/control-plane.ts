import { readFileSync } from "node:fs";
import tls from "node:tls";
import { Agent, type Dispatcher, request } from "undici";
import {
  CONTROL_PLANE_PATHS,
  HEARTBEAT_RESPONSE,
  type HeartbeatRequest,
  type HeartbeatResponse,
  type LogLine,
  type MetricsReport,
  slugPath,
} from "../protocol/host.ts";

/** Requests to the control plane give up after this long; the next round tries again. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Where the control plane is and how the agent proves who it is. */
export interface ControlPlaneOptions {
  url: string;
  hostSecret: string;
  /** A PEM file with the CA that signed the control plane's certificate (added to the system's). */
  caFile?: string;
}

/** A request to the control plane: its URL, the host secret, and the agent's one HTTP client. */
export interface HostRequest {
  url: string;
  headers: Record<string, string>;
  dispatcher?: Dispatcher;
}

/**
 * The agent's side of the host protocol: heartbeat, log batches, slug downloads and the
 * build calls, all through one undici client that trusts the control plane's CA.
 */
export class ControlPlaneClient {
  private readonly base: URL;
  private readonly dispatcher: Agent;

  constructor(private readonly o: ControlPlaneOptions) {
    this.base = new URL(o.url);
    const ca = o.caFile ? [...tls.rootCertificates, readFileSync(o.caFile, "utf8")] : undefined;
    this.dispatcher = new Agent({ connect: ca ? { ca } : {} });
  }

  /** Reports observed dynos; the answer is the desired set and the command key. */
  async heartbeat(body: HeartbeatRequest): Promise<Omit<HeartbeatResponse, "desired"> & { desired: unknown[] }> {
    const answer = HEARTBEAT_RESPONSE.safeParse(JSON.parse(await this.post(CONTROL_PLANE_PATHS.heartbeat, body)));
    if (!answer.success) throw new Error(`the heartbeat answer is malformed: ${answer.error.message}`);
    return { ...answer.data, command_key: answer.data.command_key as JsonWebKey };
  }

  /** Ships one batch of log lines (at most 5,000, the contract's limit). */
  async shipLogs(lines: LogLine[]): Promise<void> {
    await this.post(CONTROL_PLANE_PATHS.logs, { lines });
  }

  /** Reports what the running dynos use (every 20 s). */
  async reportMetrics(report: MetricsReport): Promise<void> {
    await this.post(CONTROL_PLANE_PATHS.metrics, report);
  }

  /** The request that downloads a slug placed on this host. */
  slugRequest(slugId: string): HostRequest {
    return this.hostRequest(slugPath(slugId));
  }

  /** A request to any agent endpoint of the control plane (builds use it), with the host secret. */
  hostRequest(path: string): HostRequest {
    return { url: new URL(path, this.base).toString(), headers: { authorization: `Bearer ${this.o.hostSecret}` }, dispatcher: this.dispatcher };
  }

  /** Closes kept-alive connections. */
  close(): void {
    void this.dispatcher.destroy().catch(() => {});
  }

  private async post(path: string, body: unknown): Promise<string> {
    const res = await request(new URL(path, this.base), {
      method: "POST",
      dispatcher: this.dispatcher,
      headers: { authorization: `Bearer ${this.o.hostSecret}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new Error(`POST ${path} answered ${res.statusCode}: ${refusalReason(text)}`);
    }
    return text;
  }
}

/** What a refusal of the control plane says: the message of its `{id, message}`, else the start of its body. */
export function refusalReason(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof message === "string") return message;
  } catch {}
  return text.slice(0, 300);
}
