import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import { CONTROL_PLANE_PATHS, slugPath, type HeartbeatRequest, type HeartbeatResponse, type LogLine } from "../protocol/host.ts";
import type { SlugRequest } from "./slug.ts";

/** Requests to the control plane give up after this long; the next round tries again. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Where the control plane is and how the agent proves who it is. */
export interface ControlPlaneOptions {
  url: string;
  hostSecret: string;
  /** A PEM file with the CA that signed the control plane's certificate (added to the system's). */
  caFile?: string;
}

/** The agent's side of the host protocol: heartbeat, log batches and slug downloads. */
export class ControlPlaneClient {
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(private readonly o: ControlPlaneOptions) {
    this.base = new URL(o.url);
    const ca = o.caFile ? [...tls.rootCertificates, readFileSync(o.caFile, "utf8")] : undefined;
    this.agent = this.base.protocol === "https:" ? new https.Agent({ keepAlive: true, ca }) : new http.Agent({ keepAlive: true });
  }

  /** Reports observed dynos; the answer is the desired set and the command key. */
  async heartbeat(body: HeartbeatRequest): Promise<HeartbeatResponse> {
    const text = await this.post(CONTROL_PLANE_PATHS.heartbeat, body);
    return JSON.parse(text) as HeartbeatResponse;
  }

  /** Ships one batch of log lines (at most 5,000, the contract's limit). */
  async shipLogs(lines: LogLine[]): Promise<void> {
    await this.post(CONTROL_PLANE_PATHS.logs, { lines });
  }

  /** The request that downloads a slug placed on this host. */
  slugRequest(slugId: string): SlugRequest {
    return {
      url: new URL(slugPath(slugId), this.base).toString(),
      headers: { authorization: `Bearer ${this.o.hostSecret}` },
      agent: this.agent instanceof https.Agent ? this.agent : undefined,
    };
  }

  /** A request to any agent endpoint of the control plane (builds use it), with the host secret. */
  hostRequest(path: string): SlugRequest {
    return {
      url: new URL(path, this.base).toString(),
      headers: { authorization: `Bearer ${this.o.hostSecret}` },
      agent: this.agent instanceof https.Agent ? this.agent : undefined,
    };
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private post(path: string, body: unknown): Promise<string> {
    const url = new URL(path, this.base);
    const payload = Buffer.from(JSON.stringify(body));
    const client = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method: "POST",
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.o.hostSecret}`,
          "content-type": "application/json",
          "content-length": payload.length,
        },
      });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`POST ${path}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
      req.on("error", reject);
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode! >= 200 && res.statusCode! < 300) resolve(text);
          else reject(new Error(`POST ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`));
        });
      });
      req.end(payload);
    });
  }
}
