import type { WorkerCaches } from "./caches.ts";
import type { Database } from "./db/client.ts";
import type { KeepAliveMessage } from "./services/eco/keep-alive.ts";
import type { AppCoordinator } from "./durable-objects/app-coordinator.ts";
import type { AppMetrics } from "./durable-objects/app-metrics.ts";
import type { BuildChannel } from "./durable-objects/build-channel.ts";
import type { FleetWatch } from "./durable-objects/fleet-watch.ts";
import type { LogChannel } from "./durable-objects/log-channel.ts";
import type { RateLimiter } from "./durable-objects/rate-limiter.ts";

/** Bindings and variables the Worker is configured with (wrangler.toml, secrets, `npm start`). */
export interface Bindings {
  /** postgres:// URL; a Neon host selects the serverless driver. Secret in production. */
  DATABASE_URL: string;
  /**
   * Cloudflare Hyperdrive in front of that database (`[[hyperdrive]]` in wrangler.toml):
   * when bound, the Worker connects through it, which keeps pooled, authenticated
   * connections near the database so a request skips the connection set-up.
   */
  HYPERDRIVE?: Hyperdrive;
  /** Host (and port) of the Platform API, e.g. `api.example.com` or `localhost:5443`. */
  API_HOST: string;
  /** Apps answer at `<app>.<APPS_DOMAIN>`. */
  APPS_DOMAIN: string;
  /** Port suffix for URLs the platform prints, e.g. `:5443` locally, empty in production. */
  PUBLIC_PORT_SUFFIX: string;
  /** Per-token API budget per hour (Heroku's is 4,500). */
  RATE_LIMIT_PER_HOUR: string;
  /** Private Ed25519 JWK (JSON) that signs host commands, routed requests and blob URLs. Secret. */
  COMMAND_SIGNING_KEY: string;
  /**
   * "true" when the Worker runs on the machine its dynos do (the single-machine platform):
   * the router reaches a web dyno at its own address instead of through its agent's proxy.
   */
  ROUTE_TO_DYNO_ADDRESSES?: string;
  /** "false" stops the router measuring requests for the metrics charts (to measure what that costs). */
  COLLECT_METRICS?: string;
  /**
   * The request header that carries the client's address, set by a proxy in front that a
   * client cannot bypass (`CF-Connecting-IP` on Cloudflare). Empty: every client counts as
   * one local address, and no header a client sends is believed (sign-in limits key on it).
   */
  CLIENT_ADDRESS_HEADER?: string;
  /** Seconds a web dyno has to bind $PORT (Heroku: 60). */
  BOOT_TIMEOUT_S?: string;
  /** The platform's other clocks, in seconds (see src/lib/clocks.ts): heartbeats, a silent host's time, the fleet watch's, the router's H12. */
  HEARTBEAT_INTERVAL_S?: string;
  HOST_TIMEOUT_S?: string;
  FLEET_CHECK_S?: string;
  ROUTER_TIMEOUT_S?: string;
  TAIL_KEEPALIVE_S?: string;
  LOGIN_KEEPALIVE_S?: string;
  /**
   * Log drain endpoints (`host:port`, separated by commas or spaces) allowed even though
   * they are on loopback or private addresses. Empty in production; a test platform names
   * its local receiver here.
   */
  DRAIN_ALLOW_HOSTS?: string;
  /**
   * The network tenant-named URLs (drains, webhooks) are reached through: public addresses
   * only, judged at connect time (the local platform's workerd binds it; on Cloudflare it is
   * unset and the runtime's egress reaches no private address). See tenantFetch.
   */
  PUBLIC_NETWORK?: Fetcher;
  /** Largest git push or source tarball, in MB (default 200). */
  SOURCE_MAX_MB?: string;
  /** Build time limit in seconds (default 900, as Heroku). */
  BUILD_TIMEOUT_S?: string;
  /** Each account's monthly pool of eco dyno hours (550), and a verified account's (1,000). */
  ECO_DYNO_HOURS?: string;
  ECO_DYNO_HOURS_VERIFIED?: string;
  /** Minutes without a routed request before an eco app sleeps (30). */
  ECO_IDLE_MINUTES?: string;
  /**
   * Each account's limits (see services/access/account-limits.ts; `dynoplane accounts:limits` sets
   * one account's own): apps (100), add-ons (30), one-off dynos at once (10), dynos per app
   * (100), and the share of the fleet's dyno memory its dynos may commit (0.5).
   */
  ACCOUNT_LIMIT_APPS?: string;
  ACCOUNT_LIMIT_ADDONS?: string;
  ACCOUNT_LIMIT_ONE_OFF_DYNOS?: string;
  ACCOUNT_LIMIT_DYNOS_PER_APP?: string;
  ACCOUNT_LIMIT_MEMORY_SHARE?: string;
  /** How far a scheduled run's time may be from the Worker's clock, in seconds (300); beyond, the Worker's clock is used. */
  CRON_CLOCK_MAX_SKEW_S?: string;
  /** Only for local development and tests: a WebSocket-to-TCP proxy for the Neon driver. */
  NEON_WS_PROXY?: string;
  /**
   * heroku-postgresql: the superuser URL of the PostgreSQL server add-on databases are made
   * on (its own server, never the control plane's). Secret. Unset: no Postgres add-ons.
   */
  ADDON_POSTGRES_ADMIN_URL?: string;
  /** The `host:port` dynos reach that server at, in the URLs apps get (default: the admin URL's). */
  ADDON_POSTGRES_PUBLIC_ADDRESS?: string;
  /** heroku-postgresql on Neon instead: an API key (secret), and the project and branch add-on roles and databases are made on. */
  NEON_API_KEY?: string;
  NEON_PROJECT_ID?: string;
  NEON_BRANCH_ID?: string;
  /** Neon's API (default https://console.neon.tech/api/v2). */
  NEON_API_URL?: string;
  /**
   * Custom domains on Cloudflare for SaaS: an API token (secret) that may edit the zone's
   * custom hostnames, the zone, and the name customers point their CNAME at (the zone's
   * fallback origin). Unset: the local platform's router answers custom hostnames itself.
   */
  CLOUDFLARE_API_TOKEN?: string;
  CLOUDFLARE_ZONE_ID?: string;
  CUSTOM_HOSTNAME_TARGET?: string;
  /** Cloudflare's API (default https://api.cloudflare.com/client/v4). */
  CLOUDFLARE_API_URL?: string;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  LOG_CHANNEL: DurableObjectNamespace<LogChannel>;
  APP_COORDINATOR: DurableObjectNamespace<AppCoordinator>;
  FLEET_WATCH: DurableObjectNamespace<FleetWatch>;
  BUILD_CHANNEL: DurableObjectNamespace<BuildChannel>;
  /** Each app's metrics (optional only so routes mounted in Node can run without it). */
  APP_METRICS?: DurableObjectNamespace<AppMetrics>;
  BLOBS: R2Bucket;
  /** Keep-alive pings beyond one scheduled run's share (producer and consumer: this Worker). */
  KEEP_ALIVE_QUEUE: Queue<KeepAliveMessage>;
}

/** The authenticated caller of an API request. */
export interface Actor {
  accountId: string;
  email: string;
  authorizationId: string;
  isDefaultKey: boolean;
}

export interface Variables {
  /** What this Worker instance keeps between requests. */
  caches: WorkerCaches;
  requestId: string;
  db: Database;
  actor: Actor;
}

/** The Hono environment shared by every route. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: Variables;
}
