import { Pool as NeonPool, neonConfig } from "@neondatabase/serverless";
import { createTableRelationsHelpers, extractTablesRelationalConfig, type RelationalSchemaConfig, type TablesRelationalConfig } from "drizzle-orm";
import { PgDialect, type PgDatabase, type PgQueryResultHKT } from "drizzle-orm/pg-core";
import { NeonDatabase, NeonSession } from "drizzle-orm/neon-serverless";
import { NodePgDatabase, NodePgSession } from "drizzle-orm/node-postgres";
import pg from "pg";
import { batchingSocket } from "./batching-socket.ts";
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

/** In workerd, pg's socket gathers each turn's writes into one send (see batchingSocket). */
const workerSocket = batchingSocket();

let relational: RelationalSchemaConfig<TablesRelationalConfig> | undefined;
const dialect = new PgDialect();

/**
 * Drizzle over one connection, as `drizzle(client, { schema })` makes it, but with the
 * schema's relational description worked out once per process instead of once per
 * connection (it was a tenth of a simple request's CPU time in workerd).
 */
function drizzleOver(client: pg.Client | NeonPool, driver: "neon" | "pg"): Database {
  if (!relational) {
    const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers);
    relational = { fullSchema: schema, schema: tables.tables, tableNamesMap: tables.tableNamesMap };
  }
  const db =
    driver === "neon"
      ? new NeonDatabase<Schema>(dialect, new NeonSession(client as NeonPool, dialect, relational), relational as never)
      : new NodePgDatabase<Schema>(dialect, new NodePgSession(client as pg.Client, dialect, relational), relational as never);
  return db as unknown as Database;
}

/** Drizzle over a `pg` client the caller connected and will close (a test that counts its queries). */
export const pgDatabase = (client: pg.Client): Database => drizzleOver(client, "pg");

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
  const client = new pg.Client({ connectionString: url, ...(workerSocket ? { stream: workerSocket as unknown as pg.ClientConfig["stream"] } : {}) });
  // pg-cloudflare reports "Stream was cancelled." after end(); a connection error
  // also surfaces on the failed query, so the event itself carries nothing new.
  client.on("error", () => {});
  await client.connect();
  return {
    db: drizzleOver(client, "pg"),
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
    db: drizzleOver(pool, "neon"),
    driver: "neon",
    close: () => pool.end().catch(() => {}),
  };
}
