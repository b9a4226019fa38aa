import { z } from "zod";
import { BUILD_SPEC } from "./build.ts";
import { TRANSFER_SPEC } from "./transfer.ts";

/**
 * The wire contract between the control plane and host agents.
 *
 * Agent → control plane: HTTPS with `Authorization: Bearer <host secret>` (stored hashed).
 *   POST /internal/hosts/heartbeat   HeartbeatRequest → HeartbeatResponse (every few seconds;
 *                                    reports observed dyno states, returns the desired set)
 *   POST /internal/hosts/logs        LogBatch → 204
 *   POST /internal/hosts/metrics     MetricsReport → 204 (every 20 s)
 *   GET  /internal/hosts/slugs/:id   the slug tar.gz, for dynos placed on this host
 *
 * Control plane → agent: HTTPS with `Authorization: Bearer <JWT>` signed by the control
 * plane's command key (EdDSA), audience = the host id, 60 s expiry, single-use `jti`.
 *   POST /commands                   Command → 202 (start/stop/restart now; the next
 *                                    heartbeat converges anything a lost command missed)
 *   ANY  /proxy/:dynoId/<path>       a routed app request, with the JWT in
 *                                    `X-Dynoplane-Route` (subject = dyno id)
 *
 * CLI → agent (attached one-off dynos, `heroku run`): TLS to the agent's rendezvous port.
 *   The client sends `<token>\r\n` first, the token being a JWT of purpose `rendezvous`
 *   (subject = the dyno id, audience = the host id, 60 s expiry, single-use); the agent
 *   answers `rendezvous\r\n` as a write of its own, then the stream carries the command's
 *   terminal (or stdin and merged stdout/stderr) raw, both ways, until the command ends.
 */

/** What the agent sends first on an accepted rendezvous connection (the CLI discards it). */
export const RENDEZVOUS_GREETING = "rendezvous\r\n";

/** Control-plane paths agents call, with `Authorization: Bearer <host secret>`. */
export const CONTROL_PLANE_PATHS = {
  heartbeat: "/internal/hosts/heartbeat",
  logs: "/internal/hosts/logs",
  /** Every 20 s: what each running dyno uses (memory, load), its restarts and errors since. */
  metrics: "/internal/hosts/metrics",
  /** Every path below it; host-secret auth guards them all. */
  all: "/internal/hosts/*",
  slug: "/internal/hosts/slugs/:id",
  /** A build's paths (`source`, `packs/:seq`, `output`, `slug`, `result`) hang below this. */
  build: "/internal/hosts/builds/:id",
  /** A Postgres transfer's paths (`dump`, `result`) hang below this (./transfer.ts). */
  transfer: "/internal/hosts/transfers/:id",
} as const;

/** The concrete path of a slug download. */
export const slugPath = (slugId: string) => `/internal/hosts/slugs/${encodeURIComponent(slugId)}`;
/** The concrete path of one of a build's calls, `suffix` being e.g. `/source`. */
export const buildPath = (buildId: string, suffix: string) => `/internal/hosts/builds/${encodeURIComponent(buildId)}${suffix}`;

/** Agent paths the control plane calls, with a token signed by its command key. */
export const AGENT_PATHS = {
  /** POST, `Authorization: Bearer <command token>`. */
  commands: "/commands",
} as const;

/** The agent path a routed request for `dynoId` goes to; `pathAndQuery` is what the app sees. */
export const proxyPath = (dynoId: string, pathAndQuery: string) => `/proxy/${encodeURIComponent(dynoId)}${pathAndQuery}`;

/** Splits an agent's `/proxy/<dynoId>/<rest>?q` into the dyno id and the path the app sees. */
export function parseProxyPath(url: string): { dynoId: string; path: string } | null {
  const m = /^\/proxy\/([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/.exec(url);
  if (!m) return null;
  return { dynoId: decodeURIComponent(m[1]!), path: (m[2] ?? "/") + (m[3] ?? "") };
}

/** Headers between the router and agents (lower case); none of them reaches an app or a visitor. */
export const HOST_HEADERS = {
  /** A routed request's signed token (purpose `route`, subject = the dyno id). */
  route: "x-dynoplane-route",
  /** Why a routed request reached no dyno, so the router answers with its own error (H10, H13). */
  routeError: "x-dynoplane-error",
  /** Milliseconds the agent took to connect to the dyno, for the router's log line. */
  connectMs: "x-dynoplane-connect-ms",
} as const;

/** Why a routed request reached no dyno. */
export type RouteError = "not-running" | "no-response";

/**
 * Connection-specific headers (RFC 9110 §7.6.1): they describe one hop and are never
 * forwarded, nor are the headers a `Connection` header names.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];

export const DESIRED_DYNO = z.object({
  id: z.string().uuid(),
  /** Changes on every restart or release: a new instance replaces the running one. */
  instance: z.string().uuid(),
  app_id: z.string().uuid(),
  app_name: z.string(),
  name: z.string(),
  type: z.string(),
  command: z.string(),
  size: z.string(),
  memory_mb: z.number().int().positive(),
  release_version: z.number().int(),
  slug_id: z.string().uuid(),
  /** Config vars plus additions; the agent adds PORT, DYNO, PS and HOME. */
  env: z.record(z.string(), z.string()),
  /** Web dynos must bind $PORT within this many seconds (R10). */
  boot_timeout_s: z.number().int().positive(),
  /** One-off dynos: stopped after this many seconds. */
  time_to_live_s: z.number().int().positive().optional(),
  /**
   * Attached one-off dynos (`heroku run`): the command waits for its client on the agent's
   * rendezvous port and runs under a pseudo-terminal (`tty`) or on plain pipes.
   */
  attach: z.enum(["tty", "pipes"]).optional(),
});
export type DesiredDyno = z.infer<typeof DESIRED_DYNO>;

export const OBSERVED_DYNO = z.object({
  id: z.string().uuid(),
  instance: z.string().uuid(),
  state: z.enum(["starting", "up", "crashed", "down"]),
  port: z.number().int().nullable(),
  /** The address the web process listens on (its sandbox's own), for a router on the same machine. */
  address: z.string().max(64).nullable().optional(),
  exit_code: z.number().int().nullable(),
});
export type ObservedDyno = z.infer<typeof OBSERVED_DYNO>;

/**
 * The version of this contract. An agent names the one it speaks in every heartbeat; the
 * control plane answers 409 to a version it does not speak, and the agent says why.
 */
export const HOST_PROTOCOL = 1;
/** Protocol versions this control plane speaks. */
export const SPOKEN_PROTOCOLS: readonly number[] = [1];

export const HEARTBEAT_REQUEST = z.object({
  /** The agent's release and the protocol it speaks (an agent without it speaks version 1). */
  agent: z.object({ version: z.string().min(1).max(64), protocol: z.number().int().positive() }).optional(),
  /** Where the control plane reaches this agent (commands and routed requests). */
  url: z.string().url(),
  capacity_mb: z.number().int().nonnegative(),
  dynos: z.array(OBSERVED_DYNO).max(10_000),
  /** Log lines dropped since the previous heartbeat (flood protection). */
  dropped_log_lines: z.number().int().nonnegative().default(0),
  /** A fresh id per agent process: a new one tells the control plane its one-off dynos are gone. */
  session: z.string().uuid().optional(),
  /** `host:port` of the agent's rendezvous server (attached one-off dynos), when it runs one. */
  rendezvous: z
    .string()
    .max(300)
    .regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/)
    .optional(),
});
export type HeartbeatRequest = z.infer<typeof HEARTBEAT_REQUEST>;

/** What the control plane answers a heartbeat with. */
export interface HeartbeatResponse {
  host_id: string;
  /** Public JWK that signs commands and routed requests for this host. */
  command_key: JsonWebKey;
  desired: DesiredDyno[];
  heartbeat_interval_ms: number;
}

/**
 * The agent's check of a heartbeat answer. `desired` entries are checked one by one with
 * DESIRED_DYNO, so that one malformed dyno cannot keep the others from converging.
 */
export const HEARTBEAT_RESPONSE = z.object({
  host_id: z.string().uuid(),
  command_key: z.looseObject({ kty: z.string(), crv: z.string().optional(), x: z.string().optional() }),
  desired: z.array(z.unknown()).max(10_000),
  heartbeat_interval_ms: z.number().int().nonnegative(),
});

export const LOG_LINE = z.object({
  app_id: z.string().uuid(),
  /** `web.1`, `run.1234`, or `router`/`api` for platform lines. */
  dyno: z.string().max(64),
  /** `app` for dyno output, `heroku` for platform events. */
  source: z.enum(["app", "heroku"]),
  text: z.string(),
  /** Milliseconds since the epoch, as seen on the host. */
  ts: z.number(),
});
export type LogLine = z.infer<typeof LOG_LINE>;

export const LOG_BATCH = z.object({ lines: z.array(LOG_LINE).max(5_000) });

/** Heroku's dyno errors an agent reports with a dyno's sample. */
export const DYNO_ERROR_CODES = ["R10", "R14", "R15"] as const;
export type DynoErrorCode = (typeof DYNO_ERROR_CODES)[number];

const megabytes = z.number().nonnegative().max(1e9);
/** One dyno's usage, as its agent measured it last (memory in MB, as Heroku's samples). */
export const DYNO_USAGE = z.object({
  memory_rss_mb: megabytes,
  memory_cache_mb: megabytes,
  memory_swap_mb: megabytes,
  memory_total_mb: megabytes,
  memory_pgpgin: z.number().int().nonnegative(),
  memory_pgpgout: z.number().int().nonnegative(),
  load_avg_1m: z.number().nonnegative().max(1e6),
  load_avg_5m: z.number().nonnegative().max(1e6),
  load_avg_15m: z.number().nonnegative().max(1e6),
});
export type DynoUsageReport = z.infer<typeof DYNO_USAGE>;

/** A dyno's report: its usage (null before its first sample), restarts and errors since the previous report. */
export const DYNO_METRICS = z.object({
  id: z.string().uuid(),
  usage: DYNO_USAGE.nullable(),
  memory_quota_mb: megabytes,
  /** Times the dyno's process started again since the previous report (a restart, a crash restart). */
  restarts: z.number().int().nonnegative().max(1e6),
  /** Heroku errors the dyno had since the previous report, each once. */
  errors: z.array(z.enum(DYNO_ERROR_CODES)).max(DYNO_ERROR_CODES.length),
});
export type DynoMetrics = z.infer<typeof DYNO_METRICS>;
export const METRICS_REPORT = z.object({ dynos: z.array(DYNO_METRICS).max(10_000) });
export type MetricsReport = z.infer<typeof METRICS_REPORT>;

export const COMMAND = z.discriminatedUnion("op", [
  z.object({ op: z.literal("start"), dyno: DESIRED_DYNO }),
  z.object({ op: z.literal("stop"), dyno_id: z.string().uuid() }),
  z.object({ op: z.literal("sync") }),
  z.object({ op: z.literal("build"), build: BUILD_SPEC }),
  z.object({ op: z.literal("transfer"), transfer: TRANSFER_SPEC }),
  z.object({ op: z.literal("cancel_transfer"), transfer_id: z.string().uuid() }),
]);
export type Command = z.infer<typeof COMMAND>;

/** Process types of dynos that run once and end (`heroku run`, the release phase). */
export const ONE_OFF_TYPES: readonly string[] = ["run", "release"];

/**
 * Whether a dyno of `type` runs once and ends instead of being kept up. One-off dynos are
 * started and stopped by command only: a heartbeat's desired set never names them, and an
 * agent that restarts does not run them again.
 */
export const isOneOffType = (type: string) => ONE_OFF_TYPES.includes(type);

/** What a dyno size gets. */
export interface DynoSize {
  /** Memory quota in MB (R14 above it, R15 at twice it). */
  memoryMb: number;
  eco: boolean;
  /** Processes and threads at once, Heroku's per-size limits. */
  pids: number;
  /** CPU weight relative to other dynos (100: one share). */
  cpuWeight: number;
  /** The writable layer (/app's changes and /tmp), in MB. */
  diskMb: number;
}

/** Heroku's dyno sizes and their limits. */
export const DYNO_SIZES: Record<string, DynoSize> = {
  Eco: { memoryMb: 512, eco: true, pids: 256, cpuWeight: 100, diskMb: 512 },
  Basic: { memoryMb: 512, eco: false, pids: 256, cpuWeight: 100, diskMb: 512 },
  "Standard-1X": { memoryMb: 512, eco: false, pids: 256, cpuWeight: 100, diskMb: 512 },
  "Standard-2X": { memoryMb: 1024, eco: false, pids: 512, cpuWeight: 200, diskMb: 1024 },
};

/** The limits of a size by name; an unknown name gets the smallest size's, scaled to `memoryMb`. */
export function sizeLimits(size: string, memoryMb: number): DynoSize {
  return DYNO_SIZES[size] ?? { memoryMb, eco: false, pids: 256, cpuWeight: 100, diskMb: memoryMb };
}
