import type { DomainStatus } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";

/** Where a custom hostname stands at the edge that serves it. */
export interface HostnameState {
  providerId: string | null;
  status: DomainStatus;
  /** The DNS target its CNAME points at; null: the app's own name under the apps domain. */
  dnsTarget: string | null;
  acmStatus: string | null;
  acmStatusReason: string | null;
}

/**
 * The edge's side of custom domains: on Cloudflare, Custom Hostnames (for SaaS), which route
 * the hostname to the Worker and issue its certificate; on the local platform, nothing to
 * ask (the router answers any Host it knows).
 */
export interface CustomHostnames {
  /** Whether certificates for custom hostnames are issued automatically (Heroku's ACM). */
  readonly acm: boolean;
  add(hostname: string): Promise<HostnameState>;
  refresh(providerId: string): Promise<HostnameState>;
  remove(providerId: string): Promise<void>;
}

/** The local platform: the router answers the hostname at once; its own certificate is the only one. */
export class LocalHostnames implements CustomHostnames {
  readonly acm = false;
  async add(): Promise<HostnameState> {
    return { providerId: null, status: "succeeded", dnsTarget: null, acmStatus: null, acmStatusReason: null };
  }
  async refresh(): Promise<HostnameState> {
    return this.add();
  }
  async remove(): Promise<void> {}
}

/** A Cloudflare custom hostname, as its API answers (`result` of https://developers.cloudflare.com/api/resources/custom_hostnames/). */
interface CloudflareHostname {
  id: string;
  hostname: string;
  status?: string;
  ssl?: { status?: string; validation_errors?: Array<{ message?: string }> };
  verification_errors?: string[];
}

interface CloudflareAnswer<T> {
  success: boolean;
  errors?: Array<{ code?: number; message?: string }>;
  result?: T;
}

/**
 * Cloudflare for SaaS: each custom domain is a custom hostname on the zone the Worker serves,
 * validated over HTTP and given a DV certificate by Cloudflare; customers point a CNAME at
 * the zone's fallback origin (`target`).
 */
export class CloudflareHostnames implements CustomHostnames {
  readonly acm = true;
  constructor(private readonly o: { apiUrl: string; apiToken: string; zoneId: string; target: string }) {}

  async add(hostname: string): Promise<HostnameState> {
    const made = await this.call<CloudflareHostname>("POST", "", { hostname, ssl: { method: "http", type: "dv" } });
    return this.state(made);
  }

  async refresh(providerId: string): Promise<HostnameState> {
    return this.state(await this.call<CloudflareHostname>("GET", `/${encodeURIComponent(providerId)}`));
  }

  async remove(providerId: string): Promise<void> {
    await this.call("DELETE", `/${encodeURIComponent(providerId)}`).catch((err) => {
      // Gone already (removed by hand on Cloudflare): the domain goes all the same.
      if (!(err instanceof ApiError && err.id === "not_found")) throw err;
    });
  }

  private state(h: CloudflareHostname): HostnameState {
    const status: DomainStatus = h.status === "active" ? "succeeded" : h.status === "blocked" || h.status === "deleted" ? "failed" : "pending";
    const ssl = h.ssl?.status;
    const acmStatus = ssl === "active" ? "ok" : ssl && /timed_out|expired|deleted|failed/.test(ssl) ? "failed" : "pending";
    const reason = [...(h.verification_errors ?? []), ...(h.ssl?.validation_errors ?? []).map((e) => e.message ?? "")].filter(Boolean).join("; ");
    return { providerId: h.id, status, dnsTarget: this.o.target, acmStatus, acmStatusReason: reason || null };
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.o.apiUrl}/zones/${encodeURIComponent(this.o.zoneId)}/custom_hostnames${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { Authorization: `Bearer ${this.o.apiToken}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError("unavailable", "Cloudflare's API could not be reached to manage the custom hostname; nothing was changed. Try again.");
    }
    const answer = (await res.json().catch(() => ({ success: false }))) as CloudflareAnswer<T>;
    if (res.ok && answer.success) return answer.result as T;
    const why = answer.errors?.map((e) => e.message).join("; ") || `HTTP ${res.status}`;
    if (res.status === 404) throw new ApiError("not_found", `Cloudflare has no such custom hostname: ${why}`, "domain");
    if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 403 && res.status !== 429) {
      throw new ApiError("invalid_params", `Cloudflare refused the custom hostname: ${why}`);
    }
    throw new ApiError("unavailable", `Cloudflare's API did not manage the custom hostname (${why}); nothing was changed.`);
  }
}

/** What selects and configures the provider (Worker variables; see the README). */
export interface HostnamesEnv {
  CLOUDFLARE_API_TOKEN?: string;
  CLOUDFLARE_ZONE_ID?: string;
  CLOUDFLARE_API_URL?: string;
  CUSTOM_HOSTNAME_TARGET?: string;
}

/** Cloudflare for SaaS when a token, a zone and the fallback origin's name are set; else the local platform's. */
export function customHostnames(env: HostnamesEnv): CustomHostnames {
  if (env.CLOUDFLARE_API_TOKEN && env.CLOUDFLARE_ZONE_ID && env.CUSTOM_HOSTNAME_TARGET) {
    return new CloudflareHostnames({
      apiUrl: env.CLOUDFLARE_API_URL || "https://api.cloudflare.com/client/v4",
      apiToken: env.CLOUDFLARE_API_TOKEN,
      zoneId: env.CLOUDFLARE_ZONE_ID,
      target: env.CUSTOM_HOSTNAME_TARGET,
    });
  }
  return new LocalHostnames();
}
