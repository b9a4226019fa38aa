import { and, eq } from "drizzle-orm";
import { signToken } from "../auth/signing.ts";
import type { Database } from "../db/client.ts";
import { dynos, hosts } from "../db/schema/index.ts";
import type { Bindings } from "../env.ts";
import { HOP_BY_HOP_HEADERS, HOST_HEADERS, proxyPath, type RouteError } from "../protocol/host.ts";
import { clocksOf, DEFAULT_CLOCKS } from "../lib/clocks.ts";
import { ROUTE_TOKEN_TTL_S, type RouterState } from "./state.ts";

/** What the router needs of a request, whether the API's middleware or the fast path handed it over. */
export interface RouterCall {
  request: Request;
  env: Bindings;
  /** What this Worker instance's router keeps between requests. */
  state: RouterState;
  /** Keeps work going after the response (the request's waitUntil). */
  after(work: Promise<unknown>): void;
  /** The platform's id for the request, used when the client sent no X-Request-Id. */
  requestId: string;
}

export interface WebDyno {
  id: string;
  name: string;
  desired: string;
  state: string;
  hostId: string | null;
  hostUrl: string | null;
  /** Where its process listens on its host (its sandbox's address and $PORT), as last reported. */
  address: string | null;
  port: number | null;
  /** Its host's last heartbeat. */
  hostHeartbeatAt: Date | null;
}

/** The columns of a WebDyno, for the queries that read them. */
export const WEB_DYNO_COLUMNS = {
  id: dynos.id,
  name: dynos.name,
  desired: dynos.desired,
  state: dynos.state,
  hostId: dynos.hostId,
  hostUrl: hosts.url,
  address: dynos.address,
  port: dynos.port,
  hostHeartbeatAt: hosts.lastHeartbeatAt,
};

/** The app's web dynos with where they run. */
export async function webDynos(db: Database, appId: string): Promise<WebDyno[]> {
  return db
    .select(WEB_DYNO_COLUMNS)
    .from(dynos)
    .leftJoin(hosts, and(eq(hosts.id, dynos.hostId), eq(hosts.state, "up")))
    .where(and(eq(dynos.appId, appId), eq(dynos.type, "web")));
}

/** The next routable dyno in turn (round robin per Worker instance). */
export function pickInTurn(state: RouterState, appId: string, candidates: WebDyno[]): WebDyno {
  const n = state.nextTurn(appId);
  const sorted = [...candidates].sort((a, b) => a.name.localeCompare(b.name));
  return sorted[n % sorted.length]!;
}

export interface Forwarded {
  response?: Response;
  /** Milliseconds until the host agent accepted the request (connect) and until headers came back (service). */
  connectMs: number;
  serviceMs: number;
  failure?: "timeout" | "closed" | "not_running";
  /** The dyno's host could not be reached at all (its agent did not take the connection). */
  hostUnreachable?: boolean;
}

/**
 * A host that has missed two heartbeats in a row is suspect: cut off from the network, a host
 * refuses nothing and answers nothing, so a request sent there would hang until the router's
 * timeout. (The fleet watch marks it down, and moves its dynos, after HOST_TIMEOUT_MS.)
 */
export const HOST_SUSPECT_MS = 2.5 * DEFAULT_CLOCKS.heartbeatMs;

/**
 * The candidates on hosts not known to be unreachable (one refused a connection lately) and
 * not suspect (heartbeats missed); all of them when none is left.
 */
export function reachable(state: RouterState, candidates: WebDyno[], now = Date.now(), suspectMs = HOST_SUSPECT_MS): WebDyno[] {
  const usable = candidates.filter(
    (d) => (!d.hostId || !state.unreachableHosts.has(d.hostId, now)) && (!d.hostHeartbeatAt || now - d.hostHeartbeatAt.getTime() < suspectMs),
  );
  return usable.length ? usable : candidates;
}

/**
 * The signed route token naming `dyno` for its host agent. One is signed per dyno every
 * 30 s, not per request: the agent accepts it until it expires (it only lets a request reach
 * a dyno anyone may reach through the router), and remembers those it verified.
 */
async function routeToken(state: RouterState, signingKey: string, dyno: WebDyno): Promise<string> {
  const key = `${dyno.hostId}/${dyno.id}`;
  const kept = state.routeTokens.get(key);
  if (kept) return kept;
  const token = await signToken(signingKey, { purpose: "route", audience: dyno.hostId!, subject: dyno.id, ttlSeconds: ROUTE_TOKEN_TTL_S });
  return state.routeTokens.set(key, token);
}

/**
 * Sends a request to a dyno, with Heroku's forwarding headers: straight to the address it
 * listens on when the router shares its machine (ROUTE_TO_DYNO_ADDRESSES, the single-machine
 * platform), else through its host agent's proxy with a route token naming the dyno. A
 * request without a body whose dyno's reported address no longer answers (a new instance
 * took over since) goes through the agent, which always knows.
 */
export async function forwardToDyno(call: RouterCall, url: URL, dyno: WebDyno, requestId: string, clientIp: string): Promise<Forwarded> {
  const { request, env } = call;
  const timeoutMs = clocksOf(env).routerTimeoutMs;
  const headers = new Headers(request.headers);
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
  const hasBody = request.method !== "GET" && request.method !== "HEAD" && request.body !== null;
  if (env.ROUTE_TO_DYNO_ADDRESSES === "true" && dyno.address && dyno.port) {
    const direct = await send(request, `http://${dyno.address}:${dyno.port}${url.pathname}${url.search}`, headers, hasBody, timeoutMs);
    if (direct.response || hasBody || direct.failure === "timeout") return direct;
  }
  headers.set(HOST_HEADERS.route, await routeToken(call.state, env.COMMAND_SIGNING_KEY, dyno));
  const viaAgent = await send(request, new URL(proxyPath(dyno.id, url.pathname + url.search), dyno.hostUrl!).href, headers, hasBody, timeoutMs);
  // The agent itself did not answer (not the dyno behind it): its host is lost or cut off.
  if (!viaAgent.response && viaAgent.failure === "closed" && viaAgent.thrown) return { ...viaAgent, hostUnreachable: true };
  return viaAgent;
}

async function send(request: Request, target: string, headers: Headers, hasBody: boolean, timeoutMs: number): Promise<Forwarded & { thrown?: boolean }> {
  const started = Date.now();
  try {
    const response = await fetch(target, {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
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
    // Straight from a dyno, its response goes out as it came; the agent's own header is taken off.
    if (!response.headers.has(HOST_HEADERS.connectMs)) return { response, connectMs, serviceMs };
    const answer = new Headers(response.headers);
    answer.delete(HOST_HEADERS.connectMs);
    return { response: new Response(response.body, { status: response.status, statusText: response.statusText, headers: answer }), connectMs, serviceMs };
  } catch (err) {
    const serviceMs = Date.now() - started;
    const timedOut = (err as Error)?.name === "TimeoutError" || serviceMs >= timeoutMs - 50;
    return { connectMs: 0, serviceMs, failure: timedOut ? "timeout" : "closed", thrown: true };
  }
}
