import { Pool as NeonPool, neonConfig } from "@neondatabase/serverless";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzleNeon } from "drizzle-orm/neon-serverless";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import pg from "pg";
import * as schema from "./schema/index.ts";

export type Schema = typeof schema;
/** A Drizzle database or transaction; services accept either. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface DbHandle {
  db: Database;
  driver: "neon" | "pg";
  close(): Promise<void>;
}

export interface DbOptions {
  /** `host:port/path` of a WebSocket-to-TCP proxy for the Neon driver (local runs and tests only). */
  neonWsProxy?: string;
  /** WebSocket class for the Neon driver where the runtime has none (Node 20). */
  webSocketConstructor?: unknown;
}

/** Neon's serverless endpoints; every other host is reached with `pg` over TCP. */
export function isNeonUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host.endsWith(".neon.tech") || host.endsWith(".neon.build");
}

/**
 * Opens a connection for one request or job. The driver follows the URL: the Neon
 * serverless driver (WebSockets) for Neon hosts, `pg` (TCP; `cloudflare:sockets` in
 * workerd) otherwise. Callers must `close()` it, in the Worker through `waitUntil`.
 */
export async function openDb(url: string, options: DbOptions = {}): Promise<DbHandle> {
  if (isNeonUrl(url)) return openNeon(url, options);
  const client = new pg.Client({ connectionString: url });
  // pg-cloudflare reports "Stream was cancelled." after end(); a connection error
  // also surfaces on the failed query, so the event itself carries nothing new.
  client.on("error", () => {});
  await client.connect();
  return {
    db: drizzlePg(client, { schema }) as unknown as Database,
    driver: "pg",
    close: () => client.end().catch(() => {}),
  };
}

async function openNeon(url: string, options: DbOptions): Promise<DbHandle> {
  if (options.webSocketConstructor) neonConfig.webSocketConstructor = options.webSocketConstructor as typeof WebSocket;
  const proxy = options.neonWsProxy;
  if (proxy) {
    neonConfig.wsProxy = (host: string, port: number | string) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new NeonPool({ connectionString: url, max: 1 });
  pool.on("error", () => {});
  return {
    db: drizzleNeon(pool, { schema }) as unknown as Database,
    driver: "neon",
    close: () => pool.end().catch(() => {}),
  };
}
