import pg from "pg";
import { bytesToBase64Url } from "../../lib/bytes.ts";
import type { AddonPlan } from "../addon-catalog.ts";

/** What an app gets to reach its database. */
export interface DatabaseCredentials {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** What `pg:info` shows of a database. */
export interface DatabaseStats {
  version: string;
  sizeBytes: number;
  tables: number;
  connections: number;
}

/** A database measured against its plan's storage, and whether writes are locked now. */
export interface StorageCheck {
  sizeBytes: number;
  locked: boolean;
  /** Locked or unlocked by this check. */
  changed: boolean;
}

/** Makes, re-keys and removes isolated Postgres databases. */
export interface PostgresProvider {
  /** A new role and a database it owns, named `resource`, limited by the plan. */
  provision(resource: string, plan: AddonPlan): Promise<DatabaseCredentials>;
  /** A new password for the role; its open sessions end, so the old URL stops working at once. */
  rotate(resource: string): Promise<DatabaseCredentials>;
  /** A plan change: the role's connection limit follows the plan. */
  changePlan(resource: string, plan: AddonPlan): Promise<void>;
  /** Ends the role's sessions and drops the database and the role (also when they are gone already). */
  destroy(resource: string): Promise<void>;
  /** What `pg:info` shows; `creds` are the app's own (a provider without a superuser connects with them). */
  stats(resource: string, creds: DatabaseCredentials): Promise<DatabaseStats>;
  /**
   * Holds a database to `limitBytes`: over it, writes are locked (reads, DELETE and TRUNCATE
   * still work, so it can shrink); back under it, they are allowed again. Absent where the
   * server enforces its own limits (Neon).
   */
  enforceStorage?(resource: string, limitBytes: number): Promise<StorageCheck>;
}

/** A password of 192 random bits, URL-safe (it goes into `postgres://` URLs unescaped). */
export function newPassword(): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(24)));
}

/** The role that owns a database while it is over its storage limit. */
const lockRole = (resource: string) => `${resource}_lock`;

/** A resource name the provider accepts: lower-case letters, digits and underscores, as it makes them. */
const RESOURCE_RE = /^[a-z][a-z0-9_]{2,62}$/;

function ident(resource: string): string {
  if (!RESOURCE_RE.test(resource)) throw new Error(`not a resource name: ${resource}`);
  return `"${resource}"`;
}

/**
 * The provider for a PostgreSQL server the platform administers through a superuser URL
 * (`ADDON_POSTGRES_ADMIN_URL`): a dedicated server, never the control plane's. Each add-on is
 * a role with a strong random password, no CREATEDB, CREATEROLE or replication, a connection
 * limit from its plan, and a database it owns that PUBLIC cannot connect to; the server's own
 * databases are closed to PUBLIC too, so a tenant's role reaches its own database only.
 */
export class AdminUrlProvider implements PostgresProvider {
  private readonly publicHost: string;
  private readonly publicPort: number;

  constructor(
    private readonly adminUrl: string,
    publicAddress?: string,
  ) {
    const url = new URL(adminUrl);
    const [host, port] = publicAddress ? splitAddress(publicAddress) : [url.hostname, Number(url.port || 5432)];
    this.publicHost = host;
    this.publicPort = port;
  }

  async provision(resource: string, plan: AddonPlan): Promise<DatabaseCredentials> {
    const name = ident(resource);
    const password = newPassword();
    await this.admin(async (c) => {
      // Databases other than a tenant's own are closed to tenants (idempotent, cheap).
      await c.query("revoke connect, temporary on database postgres from public");
      await c.query("revoke connect, temporary on database template1 from public");
      await c.query(
        `create role ${name} login password ${c.escapeLiteral(password)} connection limit ${plan.connectionLimit} nosuperuser nocreatedb nocreaterole noreplication nobypassrls`,
      );
      try {
        await c.query(`create database ${name} owner ${name}`);
        await c.query(`revoke all on database ${name} from public`);
        await c.query(`grant connect, temporary on database ${name} to ${name}`);
      } catch (err) {
        await c.query(`drop database if exists ${name} with (force)`).catch(() => {});
        await c.query(`drop role if exists ${name}`).catch(() => {});
        throw err;
      }
    });
    return this.credentials(resource, password);
  }

  async rotate(resource: string): Promise<DatabaseCredentials> {
    const name = ident(resource);
    const password = newPassword();
    await this.admin(async (c) => {
      await c.query(`alter role ${name} password ${c.escapeLiteral(password)}`);
      await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()", [resource]);
    });
    return this.credentials(resource, password);
  }

  async changePlan(resource: string, plan: AddonPlan): Promise<void> {
    const name = ident(resource);
    await this.admin((c) => c.query(`alter role ${name} connection limit ${plan.connectionLimit}`));
  }

  async destroy(resource: string): Promise<void> {
    const name = ident(resource);
    await this.admin(async (c) => {
      await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()", [resource]);
      await c.query(`drop database if exists ${name} with (force)`);
      await c.query(`drop role if exists ${name}`);
      await c.query(`drop role if exists ${ident(lockRole(resource))}`);
    });
  }

  /**
   * Over the limit, the database and everything in it pass to a lock role of its own (no
   * login): the app's role keeps CONNECT, and SELECT, DELETE and TRUNCATE on its tables, and
   * can neither write nor create, nor give itself rights back (it owns nothing). Back under
   * the limit, ownership returns and the lock role goes. Sessions end on either change.
   */
  async enforceStorage(resource: string, limitBytes: number): Promise<StorageCheck> {
    const name = ident(resource);
    const lock = ident(lockRole(resource));
    const { size, owner } = await this.admin(async (c) => {
      const { rows } = await c.query<{ size: string; owner: string }>(
        "select pg_database_size(datname) as size, datdba::regrole::text as owner from pg_database where datname = $1",
        [resource],
      );
      if (!rows[0]) throw new Error(`no database ${resource}`);
      return { size: Number(rows[0].size), owner: rows[0].owner.replace(/^"|"$/g, "") };
    });
    const locked = owner === lockRole(resource);
    const over = size > limitBytes;
    if (over === locked) return { sizeBytes: size, locked, changed: false };
    await this.admin(async (c) => {
      if (over) {
        await c.query(
          `do $$ begin if not exists (select 1 from pg_roles where rolname = '${lockRole(resource)}') then create role ${lock} nologin; end if; end $$`,
        );
        await c.query(`reassign owned by ${name} to ${lock}`);
        await c.query(`grant connect, temporary on database ${name} to ${name}`);
        const { rows } = await c.query<{ nspname: string }>(
          "select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'",
        );
        for (const { nspname } of rows) {
          const schema = c.escapeIdentifier(nspname);
          await c.query(`grant usage on schema ${schema} to ${name}`);
          await c.query(`grant select, delete, truncate on all tables in schema ${schema} to ${name}`);
          await c.query(`grant select, usage on all sequences in schema ${schema} to ${name}`);
        }
      } else {
        await c.query(`reassign owned by ${lock} to ${name}`);
        await c.query(`drop owned by ${lock}`);
      }
      await c.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()", [resource]);
    }, resource);
    if (!over) await this.admin((c) => c.query(`drop role if exists ${lock}`));
    return { sizeBytes: size, locked: over, changed: true };
  }

  async stats(resource: string, _creds?: DatabaseCredentials): Promise<DatabaseStats> {
    ident(resource);
    const server = await this.admin(async (c) => {
      const { rows } = await c.query<{ version: string; size: string; connections: string }>(
        "select current_setting('server_version') as version, pg_database_size($1) as size, (select count(*) from pg_stat_activity where datname = $1) as connections",
        [resource],
      );
      return rows[0]!;
    });
    const tables = await this.admin(async (c) => {
      const { rows } = await c.query<{ n: string }>("select count(*) as n from pg_tables where schemaname not in ('pg_catalog', 'information_schema')");
      return Number(rows[0]!.n);
    }, resource);
    return { version: server.version, sizeBytes: Number(server.size), tables, connections: Number(server.connections) };
  }

  private credentials(resource: string, password: string): DatabaseCredentials {
    return { host: this.publicHost, port: this.publicPort, database: resource, user: resource, password };
  }

  /** One superuser connection for `fn` (to `database`, else the admin URL's). */
  private async admin<T>(fn: (c: pg.Client) => Promise<T>, database?: string): Promise<T> {
    const url = new URL(this.adminUrl);
    if (database) url.pathname = `/${database}`;
    const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000 });
    client.on("error", () => {});
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/** `host:port` (or `[v6]:port`) as a pair. */
function splitAddress(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) return [address, 5432];
  return [m[1]!.replace(/^\[(.*)\]$/, "$1"), Number(m[2])];
}

/** The `postgres://` URL apps get in `DATABASE_URL`. */
export function databaseUrl(c: DatabaseCredentials): string {
  const host = c.host.includes(":") ? `[${c.host}]` : c.host;
  return `postgres://${encodeURIComponent(c.user)}:${encodeURIComponent(c.password)}@${host}:${c.port}/${encodeURIComponent(c.database)}`;
}

/** What selects and configures a provider (Worker variables; see the README). */
export interface ProviderEnv {
  ADDON_POSTGRES_ADMIN_URL?: string;
  ADDON_POSTGRES_PUBLIC_ADDRESS?: string;
  NEON_API_KEY?: string;
  NEON_API_URL?: string;
  NEON_PROJECT_ID?: string;
  NEON_BRANCH_ID?: string;
}

/**
 * The provider the Worker is configured with: Neon's API when a Neon API key, project and
 * branch are set, else a server of its own through ADDON_POSTGRES_ADMIN_URL; null when
 * Postgres add-ons are not offered.
 */
export function postgresProvider(env: ProviderEnv): PostgresProvider | null {
  if (env.NEON_API_KEY && env.NEON_PROJECT_ID && env.NEON_BRANCH_ID) {
    return new NeonProvider({
      apiUrl: env.NEON_API_URL || "https://console.neon.tech/api/v2",
      apiKey: env.NEON_API_KEY,
      projectId: env.NEON_PROJECT_ID,
      branchId: env.NEON_BRANCH_ID,
      publicAddress: env.ADDON_POSTGRES_PUBLIC_ADDRESS,
    });
  }
  return env.ADDON_POSTGRES_ADMIN_URL ? new AdminUrlProvider(env.ADDON_POSTGRES_ADMIN_URL, env.ADDON_POSTGRES_PUBLIC_ADDRESS) : null;
}

/** Neon's error body. */
interface NeonError {
  code?: string;
  message?: string;
}

/**
 * The provider for Neon (https://api-docs.neon.tech): each add-on is a role and a database it
 * owns on the configured project and branch, made, re-keyed (`reset_password`) and removed
 * through Neon's API; the host is the branch's read-write endpoint. Roles Neon makes through
 * its API belong to `neon_superuser`, so tenants there are kept apart by their own database
 * and password, not by the rights the admin-URL provider takes away; a project per tenant
 * is the stricter choice an operator can make with the same code.
 */
export class NeonProvider implements PostgresProvider {
  constructor(private readonly o: { apiUrl: string; apiKey: string; projectId: string; branchId: string; publicAddress?: string }) {}

  async provision(resource: string, _plan: AddonPlan): Promise<DatabaseCredentials> {
    ident(resource);
    const made = await this.call<{ role: { name: string; password: string } }>("POST", "/roles", { role: { name: resource } });
    try {
      await this.call("POST", "/databases", { database: { name: resource, owner_name: resource } });
    } catch (err) {
      await this.call("DELETE", `/roles/${resource}`).catch(() => {});
      throw err;
    }
    return this.credentials(resource, made.role.password);
  }

  async rotate(resource: string): Promise<DatabaseCredentials> {
    ident(resource);
    const reset = await this.call<{ role: { password: string } }>("POST", `/roles/${resource}/reset_password`);
    return this.credentials(resource, reset.role.password);
  }

  async changePlan(): Promise<void> {
    // Neon sizes computes per endpoint, not per role: a plan's limits stay as stated.
  }

  async destroy(resource: string): Promise<void> {
    ident(resource);
    await this.call("DELETE", `/databases/${resource}`, undefined, [404]);
    await this.call("DELETE", `/roles/${resource}`, undefined, [404]);
  }

  async stats(resource: string, creds: DatabaseCredentials): Promise<DatabaseStats> {
    ident(resource);
    const client = new pg.Client({ connectionString: databaseUrl(creds), connectionTimeoutMillis: 10_000 });
    client.on("error", () => {});
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string; size: string; connections: string; tables: string }>(
        "select current_setting('server_version') as version, pg_database_size(current_database()) as size, (select count(*) from pg_stat_activity where datname = current_database()) as connections, (select count(*) from pg_tables where schemaname not in ('pg_catalog', 'information_schema')) as tables",
      );
      const r = rows[0]!;
      return { version: r.version, sizeBytes: Number(r.size), tables: Number(r.tables), connections: Number(r.connections) };
    } finally {
      await client.end().catch(() => {});
    }
  }

  private async credentials(resource: string, password: string): Promise<DatabaseCredentials> {
    const [host, port] = this.o.publicAddress ? splitAddress(this.o.publicAddress) : [await this.endpointHost(), 5432];
    return { host, port, database: resource, user: resource, password };
  }

  /** The branch's read-write endpoint, which apps connect to. */
  private async endpointHost(): Promise<string> {
    const { endpoints } = await this.call<{ endpoints: Array<{ host: string; branch_id: string; type: string }> }>("GET", "/endpoints", undefined, [], true);
    const endpoint = endpoints.find((e) => e.branch_id === this.o.branchId && e.type === "read_write");
    if (!endpoint) throw new Error(`Neon project ${this.o.projectId} has no read-write endpoint on branch ${this.o.branchId}`);
    return endpoint.host;
  }

  /**
   * One call on the branch (or, with `project`, the project); a 423 (another operation still
   * running on the branch) is retried, as Neon asks.
   */
  private async call<T = unknown>(method: string, path: string, body?: unknown, tolerated: number[] = [], project = false): Promise<T> {
    const base = `${this.o.apiUrl}/projects/${encodeURIComponent(this.o.projectId)}${project ? "" : `/branches/${encodeURIComponent(this.o.branchId)}`}`;
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(base + path, {
        method,
        headers: { Authorization: `Bearer ${this.o.apiKey}`, Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      if (res.status === 423 && attempt < 10) {
        await res.body?.cancel();
        await new Promise((r) => setTimeout(r, 300 * (attempt + 1)));
        continue;
      }
      if (tolerated.includes(res.status)) {
        await res.body?.cancel();
        return undefined as T;
      }
      const json = (await res.json().catch(() => ({}))) as T & NeonError;
      if (!res.ok) throw new Error(`Neon's API answered ${res.status} to ${method} ${path}: ${json.message ?? json.code ?? "no reason given"}`);
      return json;
    }
  }
}
