import type { Database } from "./db/client.ts";
import type { RateLimiter } from "./durable-objects/rate-limiter.ts";

/** Bindings and variables the Worker is configured with (wrangler.toml, secrets, `npm start`). */
export interface Bindings {
  /** postgres:// URL; a Neon host selects the serverless driver. Secret in production. */
  DATABASE_URL: string;
  /** Host (and port) of the Platform API, e.g. `api.example.com` or `localhost:5443`. */
  API_HOST: string;
  /** Apps answer at `<app>.<APPS_DOMAIN>`. */
  APPS_DOMAIN: string;
  /** Port suffix for URLs the platform prints, e.g. `:5443` locally, empty in production. */
  PUBLIC_PORT_SUFFIX: string;
  /** Per-token API budget per hour (Heroku's is 4,500). */
  RATE_LIMIT_PER_HOUR: string;
  /** Only for local development and tests: a WebSocket-to-TCP proxy for the Neon driver. */
  NEON_WS_PROXY?: string;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  BLOBS: R2Bucket;
}

/** The authenticated caller of an API request. */
export interface Actor {
  accountId: string;
  email: string;
  authorizationId: string;
  isDefaultKey: boolean;
}

export interface Variables {
  requestId: string;
  db: Database;
  actor: Actor;
}

/** The Hono environment shared by every route. */
export interface AppEnv {
  Bindings: Bindings;
  Variables: Variables;
}
