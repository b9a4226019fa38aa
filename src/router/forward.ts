import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import { signToken } from "../auth/signing.ts";
import type { Database } from "../db/client.ts";
import { dynos, hosts } from "../db/schema/index.ts";
import type { AppEnv } from "../env.ts";
import { HOP_BY_HOP_HEADERS, HOST_HEADERS, proxyPath, type RouteError } from "../protocol/host.ts";

/** Heroku's router gives a dyno 30 s to start answering (H12). */
export const ROUTER_TIMEOUT_MS = 30_000;

export interface WebDyno {
  id: string;
  name: string;
  desired: string;
  state: string;
  hostId: string | null;
  hostUrl: string | null;
}

/** The app's web dynos with where they run. */
export async function webDynos(db: Database, appId: string): Promise<WebDyno[]> {
  return db
    .select({ id: dynos.id, name: dynos.name, desired: dynos.desired, state: dynos.state, hostId: dynos.hostId, hostUrl: hosts.url })
    .from(dynos)
    .leftJoin(hosts, and(eq(hosts.id, dynos.hostId), eq(hosts.state, "up")))
    .where(and(eq(dynos.appId, appId), eq(dynos.type, "web")));
}

const turns = new Map<string, number>();
/** The next routable dyno in turn (round robin per Worker instance). */
export function pickInTurn(appId: string, candidates: WebDyno[]): WebDyno {
  const n = (turns.get(appId) ?? -1) + 1;
  turns.set(appId, n % 1_000_000);
  const sorted = [...candidates].sort((a, b) => a.name.localeCompare(b.name));
  return sorted[n % sorted.length]!;
}

export interface Forwarded {
  response?: Response;
  /** Milliseconds until the host agent accepted the request (connect) and until headers came back (service). */
  connectMs: number;
  serviceMs: number;
  failure?: "timeout" | "closed" | "not_running";
}

/**
 * Sends a request to a dyno through its host agent's proxy, with Heroku's forwarding
 * headers and a signed, short-lived route token naming the dyno.
 */
export async function forwardToDyno(c: Context<AppEnv>, dyno: WebDyno, requestId: string, clientIp: string): Promise<Forwarded> {
  const url = new URL(c.req.url);
  const headers = new Headers(c.req.raw.headers);
  for (const h of (headers.get("Connection") ?? "").split(",")) if (h.trim()) headers.delete(h.trim());
  for (const h of HOP_BY_HOP_HEADERS) headers.delete(h);
  // Only the router may name a route: a visitor's own header is dropped with the rest.
  for (const h of Object.values(HOST_HEADERS)) headers.delete(h);
  const priorFwd = headers.get("X-Forwarded-For");
  headers.set("X-Forwarded-For", priorFwd ? `${priorFwd}, ${clientIp}` : clientIp);
  headers.set("X-Forwarded-Proto", url.protocol.replace(":", ""));
  headers.set("X-Forwarded-Port", url.port || (url.protocol === "https:" ? "443" : "80"));
  headers.set("X-Request-Id", requestId);
  headers.set("X-Request-Start", String(Date.now()));
  headers.append("Via", "1.1 dynoplane");
  headers.set(HOST_HEADERS.route, await signToken(c.env.COMMAND_SIGNING_KEY, { purpose: "route", audience: dyno.hostId!, subject: dyno.id, ttlSeconds: 60 }));
  const target = new URL(proxyPath(dyno.id, url.pathname + url.search), dyno.hostUrl!);
  const started = Date.now();
  const hasBody = !["GET", "HEAD"].includes(c.req.method);
  try {
    const response = await fetch(target, {
      method: c.req.method,
      headers,
      body: hasBody ? c.req.raw.body : undefined,
      redirect: "manual",
      signal: AbortSignal.timeout(ROUTER_TIMEOUT_MS),
    });
    const elapsed = Date.now() - started;
    // The agent reports how long connecting to the dyno took; the rest is the dyno's service time.
    const connectMs = Math.max(0, Math.min(elapsed, Number(response.headers.get(HOST_HEADERS.connectMs)) || 0));
    const serviceMs = elapsed - connectMs;
    // The host agent marks the 502s it gives when the dyno is gone or did not answer.
    const routeError = response.status === 502 ? (response.headers.get(HOST_HEADERS.routeError) as RouteError | null) : null;
    if (routeError === "not-running" || routeError === "no-response") {
      await response.body?.cancel();
      return { connectMs, serviceMs, failure: routeError === "not-running" ? "not_running" : "closed" };
    }
    const answer = new Headers(response.headers);
    answer.delete(HOST_HEADERS.connectMs);
    return { response: new Response(response.body, { status: response.status, statusText: response.statusText, headers: answer }), connectMs, serviceMs };
  } catch (err) {
    const serviceMs = Date.now() - started;
    const timedOut = (err as Error)?.name === "TimeoutError" || serviceMs >= ROUTER_TIMEOUT_MS - 50;
    return { connectMs: 0, serviceMs, failure: timedOut ? "timeout" : "closed" };
  }
}
