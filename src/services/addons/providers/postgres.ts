import pg from "pg";
import { bytesToBase64Url } from "../../../lib/bytes.ts";
import { ApiError } from "../../../errors.ts";
import type { AddonPlan } from "../catalog.ts";

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
  /** Null when it could not be counted (the database's own connections all taken). */
  tables: number | null;
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
  /**
   * Refuses, with the API's error, a plan the server has no room for (`replacing`: the add-on
   * whose current plan is given back). Absent where the server sizes itself (Neon).
   */
  checkRoom?(plan: AddonPlan, replacing?: string): Promise<void>;
  /** A plan change: the role's connection limit follows the plan. */
  changePlan(resource: string, plan: AddonPlan): Promise<void>;
  /** Ends the role's sessions and drops the database and the role (also when they are gone already). */
  destroy(resource: string): Promise<void>;
  /** Ends every session of the add-on's role (`pg:killall`); returns how many ended. */
  endSessions(resource: string, creds: DatabaseCredentials): Promise<number>;
  /**
   * Empties the database (`pg:reset`): it is dropped and made again, the same role and
   * password owning it, with the plan's limits (writes are allowed again if they were
   * locked), and `extensions` made in it as the tenant. An extension the server does not
   * have, or does not trust a database owner to make, is refused before anything changes.
   */
  reset(resource: string, plan: AddonPlan, creds: DatabaseCredentials, extensions: string[]): Promise<void>;
  /**
   * A fresh database for a restore (`pg:backups:restore`) beside the add-on's, with the
   * plan's limits (an earlier one left over is dropped first); returns the credentials the
   * restore connects with (`creds` are the add-on's own). The add-on's own database serves
   * on, untouched, until `finishRestore`.
   */
  prepareRestore(resource: string, plan: AddonPlan, creds: DatabaseCredentials): Promise<DatabaseCredentials>;
  /** The restored database takes the add-on's name; the one it replaces is dropped and its sessions end. */
  finishRestore(resource: string): Promise<void>;
  /** A failed or cancelled restore's database is dropped; the add-on's own is as it was. */
  discardRestore(resource: string): Promise<void>;
  /** Drops the database a finished restore replaced, where `finishRestore` left it (out of the restore's own time). */
  dropReplaced?(resource: string): Promise<void>;
  /**
   * How an app reaches the add-on's database with `password`: this provider's own address,
   * the resource as role and database (never what an app's config says they are).
   */
  connection(resource: string, password: string): Promise<DatabaseCredentials>;
  /** What `pg:info` shows; `creds` are the app's own (a provider without a superuser connects with them). */
  stats(resource: string, creds: DatabaseCredentials): Promise<DatabaseStats>;
  /**
   * Holds a database to `limitBytes`: over it, writes are locked (reads, DELETE and TRUNCATE
   * still work, so it can shrink); back under it, they are allowed again. Absent where the
   * server enforces its own limits (Neon).
   */
  enforceStorage?(resource: string, limitBytes: number): Promise<StorageCheck>;
}

/** The database a restore into `resource` goes to before it takes its place. */
export const restoreStaging = (resource: string) => `${resource}_restore`;

/** The name the database a restore replaced has until it is dropped. */
const replacedName = (resource: string) => `${resource}_replaced`;

/** A password of 192 random bits, URL-safe (it goes into `postgres://` URLs unescaped). */
export function newPassword(): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(24)));
}

/** The role the platform administers an add-on server with: CREATEROLE and CREATEDB, never a superuser. */
export const ADMIN_ROLE = "dynoplane_admin";

/**
 * The role whose members may make large objects: every add-on's role while its database is
 * under its storage limit. The functions that make one are closed to PUBLIC in `template1`,
 * which every add-on database is copied from (see templateSetupStatements).
 */
export const LO_WRITER_ROLE = "dynoplane_lo_writer";

/** The functions that make a new large object (the server-side `lo_import` is closed to tenants already). */
const LO_MAKERS = ["pg_catalog.lo_create(oid)", "pg_catalog.lo_creat(integer)", "pg_catalog.lo_from_bytea(oid, bytea)"];

/**
 * What every platform session on an add-on server starts with, in its startup packet, which
 * overrides whatever a tenant set with `ALTER DATABASE … SET` or `ALTER ROLE … SET`: names
 * resolve in `pg_catalog` first and in nothing a tenant can write (CVE-2018-1058), no role a
 * tenant planted is taken on (`role=none`), no read-only default or timeout of a tenant's
 * choosing. Every statement also names catalog objects schema-qualified.
 */
export const SAFE_SESSION_OPTIONS = [
  "search_path=pg_catalog,pg_temp",
  "role=none",
  "default_transaction_read_only=off",
  "statement_timeout=60000",
  "lock_timeout=10000",
  "idle_in_transaction_session_timeout=60000",
  "standard_conforming_strings=on",
]
  .map((o) => `-c ${o}`)
  .join(" ");

/**
 * What the server's superuser runs in its `postgres` database (idempotent; `npm start` runs it
 * on every start, an operator once, see the README): the administration role, the
 * large-object role, the server's own databases closed to tenants, and roles an earlier
 * release made as the superuser handed to the administration role.
 */
export function serverSetupStatements(adminPassword: string): string[] {
  if (!/^[A-Za-z0-9_-]{16,}$/.test(adminPassword)) throw new Error("the administration role's password must be 16 or more URL-safe characters");
  return [
    `do $$ begin if not exists (select from pg_catalog.pg_roles where rolname = '${ADMIN_ROLE}') then create role ${ADMIN_ROLE}; end if; end $$`,
    // Its password is random and long, which key stretching cannot strengthen: connecting stays cheap.
    "set scram_iterations = 16",
    `alter role ${ADMIN_ROLE} login nosuperuser createrole createdb noreplication nobypassrls connection limit -1 password '${adminPassword}'`,
    // Ends tenants' sessions, sizes their databases, and always finds a connection.
    `grant pg_signal_backend, pg_read_all_stats, pg_use_reserved_connections to ${ADMIN_ROLE}`,
    `grant set on parameter temp_file_limit to ${ADMIN_ROLE}`,
    `do $$ begin if not exists (select from pg_catalog.pg_roles where rolname = '${LO_WRITER_ROLE}') then create role ${LO_WRITER_ROLE} nologin; end if; end $$`,
    `grant ${LO_WRITER_ROLE} to ${ADMIN_ROLE} with admin true`,
    "revoke connect, temporary on database postgres from public",
    "revoke connect, temporary on database template1 from public",
    `grant connect on database postgres to ${ADMIN_ROLE}`,
    `do $$ declare r record; begin
       for r in select rolname, rolcanlogin from pg_catalog.pg_roles
                where not rolsuper and rolname !~ '^pg_' and rolname not in ('${ADMIN_ROLE}', '${LO_WRITER_ROLE}') loop
         execute pg_catalog.format('grant %I to ${ADMIN_ROLE} with admin true, inherit true, set true', r.rolname);
         if r.rolcanlogin and not exists (select from pg_catalog.pg_roles where rolname = r.rolname || '_lock') then
           execute pg_catalog.format('grant ${LO_WRITER_ROLE} to %I', r.rolname);
         end if;
       end loop;
     end $$`,
  ];
}

/** The schema of pg_stat_statements in every add-on database: the superuser's, closed to tenants' writes. */
export const STATS_SCHEMA = "dynoplane_stats";

/**
 * What the superuser runs in `template1`, which every add-on database is copied from: making
 * a large object takes LO_WRITER_ROLE; and, when the server loads pg_stat_statements, the
 * extension as `pg:outliers` and `pg:calls` read it, each tenant seeing its own statements
 * in its own database alone. Its view is replaced by one over a SECURITY DEFINER function
 * that keeps the rows of the session's own role and database (the extension's function
 * returns every database's statistics to anyone who may call it, and is closed to PUBLIC);
 * `_heroku.pg_stat_statements_reset()`, which the CLI calls for Essential plans, resets
 * the same rows alone. Both run with a fixed search_path and name everything qualified.
 */
export function templateSetupStatements(): string[] {
  const s = STATS_SCHEMA;
  const own = `(select r.oid from pg_catalog.pg_roles r where r.rolname = session_user)`;
  const here = `(select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())`;
  return [
    `revoke execute on function ${LO_MAKERS.join(", ")} from public`,
    `grant execute on function ${LO_MAKERS.join(", ")} to ${LO_WRITER_ROLE}`,
    `do $setup$ declare cols text; begin
       if pg_catalog.current_setting('shared_preload_libraries') !~ '(^|,)\\s*pg_stat_statements\\s*(,|$)' then return; end if;
       create schema if not exists ${s};
       revoke all on schema ${s} from public;
       grant usage on schema ${s} to public;
       create extension if not exists pg_stat_statements schema ${s};
       revoke all on function ${s}.pg_stat_statements(boolean) from public;
       revoke all on ${s}.pg_stat_statements_info from public;
       select pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum) into cols
         from pg_catalog.pg_attribute a where a.attrelid = '${s}.pg_stat_statements'::pg_catalog.regclass and a.attnum > 0 and not a.attisdropped;
       execute pg_catalog.format(
         $f$create or replace function ${s}.own_statements() returns table (%s) language sql stable security definer
            set search_path = pg_catalog, pg_temp
            as $b$ select s.* from ${s}.pg_stat_statements(true) s where s.dbid = ${here} and s.userid = ${own} $b$$f$, cols);
       revoke all on function ${s}.own_statements() from public;
       grant execute on function ${s}.own_statements() to public;
       create or replace view ${s}.pg_stat_statements as select * from ${s}.own_statements();
       revoke all on ${s}.pg_stat_statements from public;
       grant select on ${s}.pg_stat_statements to public;
       create schema if not exists _heroku;
       revoke all on schema _heroku from public;
       grant usage on schema _heroku to public;
       create or replace function _heroku.pg_stat_statements_reset() returns timestamptz language sql volatile security definer
         set search_path = pg_catalog, pg_temp
         as $b$ select ${s}.pg_stat_statements_reset(${own}, ${here}, 0) $b$;
       revoke all on function _heroku.pg_stat_statements_reset() from public;
       grant execute on function _heroku.pg_stat_statements_reset() to public;
     end $setup$`,
  ];
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
 * Schemas of the server's own, never a tenant's: the catalogs, and those the superuser made
 * in `template1` (pg_stat_statements' and `_heroku`, see templateSetupStatements), which a
 * tenant can neither make nor change.
 */
const SYSTEM_SCHEMAS =
  "n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_(toast|temp_|toast_temp_)' and not (select o.rolsuper from pg_catalog.pg_roles o where o.oid = n.nspowner)";

/** Serialises provisioning and plan changes on one server (the connection budget is counted, then spent). */
const BUDGET_LOCK = 0x64796e6f; // "dyno"

/**
 * The provider for a PostgreSQL server the platform administers through
 * `ADDON_POSTGRES_ADMIN_URL`: a dedicated server, never the control plane's, reached as
 * ADMIN_ROLE, which has CREATEROLE and CREATEDB and no superuser (a superuser URL is
 * refused). Each add-on is a role with a strong random password, no CREATEDB, CREATEROLE or
 * replication, the connection limit and temp-file limit of its plan, and a database it owns
 * that PUBLIC cannot connect to; the server's own databases are closed to PUBLIC too, so a
 * tenant's role reaches its own database only.
 *
 * The platform's sessions stay out of tenants' databases: sizes, connections and the version
 * come from the `postgres` database; `pg:info`'s table count uses the add-on's own
 * credentials. The storage lock alone must work inside a tenant's database, and does so
 * with SAFE_SESSION_OPTIONS, schema-qualified names and statements that run no tenant code.
 *
 * The server never promises more connections than it has: the connection limits of all its
 * roles together stay within `max_connections` less the reserved ones, and an add-on that
 * would go beyond is refused before anything is made.
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

  async checkRoom(plan: AddonPlan, replacing?: string): Promise<void> {
    await this.admin((c) => this.requireRoom(c, plan, replacing));
  }

  async provision(resource: string, plan: AddonPlan): Promise<DatabaseCredentials> {
    const name = ident(resource);
    const password = newPassword();
    await this.admin(async (c) => {
      await c.query("select pg_catalog.pg_advisory_lock($1)", [BUDGET_LOCK]);
      await this.requireRoom(c, plan);
      await c.query(
        `create role ${name} login password ${c.escapeLiteral(password)} connection limit ${plan.connectionLimit} nosuperuser nocreatedb nocreaterole noreplication nobypassrls`,
      );
      try {
        await this.makeDatabase(c, name, plan);
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
      await this.terminateSessions(c, resource);
    });
    return this.credentials(resource, password);
  }

  async changePlan(resource: string, plan: AddonPlan): Promise<void> {
    const name = ident(resource);
    await this.admin(async (c) => {
      await c.query("select pg_catalog.pg_advisory_lock($1)", [BUDGET_LOCK]);
      await this.requireRoom(c, plan, resource);
      await c.query(`alter role ${name} connection limit ${plan.connectionLimit}`);
      await c.query(`alter role ${name} set temp_file_limit = '${plan.tempFileMb}MB'`);
    });
  }

  async destroy(resource: string): Promise<void> {
    const name = ident(resource);
    await this.admin(async (c) => {
      await this.terminateSessions(c, resource);
      await c.query(`drop database if exists ${name} with (force)`);
      // What a restore left behind: its fresh database and role, the database it replaced.
      await c.query(`drop database if exists ${ident(restoreStaging(resource))} with (force)`);
      await c.query(`drop role if exists ${ident(restoreStaging(resource))}`);
      await c.query(`drop database if exists ${ident(replacedName(resource))} with (force)`);
      await c.query(`drop role if exists ${name}`);
      await c.query(`drop role if exists ${ident(lockRole(resource))}`);
    });
  }

  async endSessions(resource: string): Promise<number> {
    ident(resource);
    return this.admin((c) => this.terminateSessions(c, resource));
  }

  async reset(resource: string, plan: AddonPlan, creds: DatabaseCredentials, extensions: string[]): Promise<void> {
    const name = ident(resource);
    await this.admin(async (c) => {
      await requireTrusted(c, extensions);
      await this.terminateSessions(c, resource);
      await c.query(`drop database if exists ${name} with (force)`);
      // A database over its storage was owned by the lock role: an empty one is under it.
      await c.query(`drop role if exists ${ident(lockRole(resource))}`);
      await this.makeDatabase(c, name, plan);
    });
    await createExtensions(creds, extensions);
  }

  /**
   * The fresh database is owned by a login role of the same name (`<resource>_restore`: the
   * server admits a role only to the database of its own name), with the plan's limits; the
   * restore runs as it, and `finishRestore` gives everything it made to the add-on's role.
   */
  async prepareRestore(resource: string, plan: AddonPlan, creds: DatabaseCredentials): Promise<DatabaseCredentials> {
    const staging = restoreStaging(resource);
    const name = ident(staging);
    const password = newPassword();
    await this.admin(async (c) => {
      await c.query(`drop database if exists ${name} with (force)`);
      await c.query(`drop role if exists ${name}`);
      await c.query(
        `create role ${name} login password ${c.escapeLiteral(password)} connection limit 2 nosuperuser nocreatedb nocreaterole noreplication nobypassrls`,
      );
      await this.makeDatabase(c, name, plan);
    });
    return { ...creds, database: staging, user: staging, password };
  }

  /**
   * The two renames are one transaction: the add-on's name is never without a database. What
   * follows them (the restore role going, the large-object right back) cannot undo the restore.
   */
  async finishRestore(resource: string): Promise<void> {
    const name = ident(resource);
    const staging = ident(restoreStaging(resource));
    const old = ident(replacedName(resource));
    // What the restore made becomes the add-on's role's (no tenant code runs: ownership changes only).
    await this.inTenantDatabase(restoreStaging(resource), async (c) => {
      await c.query(`reassign owned by ${staging} to ${name}`);
    });
    await this.admin(async (c) => {
      // One an earlier restore replaced and could not drop goes now, while the add-on has its own.
      const { rows } = await c.query<{ n: number }>("select count(*)::int as n from pg_catalog.pg_database where datname = $1", [resource]);
      if (rows[0]!.n === 1) await c.query(`drop database if exists ${old} with (force)`);
      await c.query(`alter database ${staging} owner to ${name}`);
      await c.query(`revoke all on database ${staging} from ${staging}`);
      await c.query(`grant connect, temporary on database ${staging} to ${name}`);
      // No new session may start in the old database between its sessions' end and the rename.
      await c.query(`alter database ${name} with allow_connections false`);
      try {
        await this.terminateSessions(c, resource);
        await this.terminateSessions(c, restoreStaging(resource));
        await c.query("begin");
        await c.query(`alter database ${name} rename to ${old}`);
        await c.query(`alter database ${staging} rename to ${name}`);
        await c.query("commit");
      } catch (err) {
        await c.query("rollback").catch(() => {});
        await c.query(`alter database ${name} with allow_connections true`).catch(() => {});
        throw err;
      }
      await c.query(`drop role ${staging}`).catch(() => {});
      await c.query(`grant ${LO_WRITER_ROLE} to ${name}`).catch(() => {});
    });
  }

  /** The replaced database, and the lock role that owned it if it was over its storage. */
  async dropReplaced(resource: string): Promise<void> {
    await this.admin(async (c) => {
      await c.query(`drop database if exists ${ident(replacedName(resource))} with (force)`);
      await c.query(`drop role if exists ${ident(lockRole(resource))}`);
    });
  }

  async discardRestore(resource: string): Promise<void> {
    const staging = ident(restoreStaging(resource));
    await this.admin(async (c) => {
      await c.query(`drop database if exists ${staging} with (force)`);
      await c.query(`drop role if exists ${staging}`);
    });
  }

  /**
   * Over the limit, the database and everything in it pass to a lock role of its own (no
   * login), and the app's role keeps CONNECT, SELECT, and DELETE and TRUNCATE so it can
   * shrink. No path writes: its functions go back to it (a SECURITY DEFINER one then has the
   * tenant's rights, not the owner's), DELETE is withheld where a rule or a foreign key's
   * action would write as the owner, TEMPORARY and making large objects are taken away, and
   * the role can give itself nothing back (it owns no table). Back under the limit,
   * ownership and rights return and the lock role goes. Sessions end on either change.
   */
  async enforceStorage(resource: string, limitBytes: number): Promise<StorageCheck> {
    const name = ident(resource);
    const lock = ident(lockRole(resource));
    const { size, owner } = await this.admin(async (c) => {
      const { rows } = await c.query<{ size: string; owner: string }>(
        "select pg_catalog.pg_database_size(d.oid) as size, pg_catalog.pg_get_userbyid(d.datdba) as owner from pg_catalog.pg_database d where d.datname = $1",
        [resource],
      );
      if (!rows[0]) throw new Error(`no database ${resource}`);
      return { size: Number(rows[0].size), owner: rows[0].owner };
    });
    const locked = owner === lockRole(resource);
    const over = size > limitBytes;
    if (over === locked) return { sizeBytes: size, locked, changed: false };
    if (over) {
      await this.admin(async (c) => {
        const { rowCount } = await c.query("select from pg_catalog.pg_roles where rolname = $1", [lockRole(resource)]);
        if (!rowCount) await c.query(`create role ${lock} nologin`);
        await c.query(`revoke ${LO_WRITER_ROLE} from ${name}`);
      });
      await this.inTenantDatabase(resource, async (c) => {
        await c.query("begin");
        await c.query(`reassign owned by ${name} to ${lock}`);
        const routines = await c.query<{ sig: string; nspname: string }>(
          `select p.oid::pg_catalog.regprocedure::text as sig, n.nspname from pg_catalog.pg_proc p
           join pg_catalog.pg_namespace n on n.oid = p.pronamespace
           where p.proowner = $1::pg_catalog.regrole and ${SYSTEM_SCHEMAS}`,
          [lockRole(resource)],
        );
        for (const r of routines.rows) {
          // The new owner needs CREATE on the schema for the change; it is never seen outside this transaction.
          const schema = c.escapeIdentifier(r.nspname);
          await c.query(`grant create on schema ${schema} to ${name}`);
          await c.query(`alter routine ${r.sig} owner to ${name}`);
          await c.query(`revoke create on schema ${schema} from ${name}`);
        }
        const schemas = await c.query<{ nspname: string }>(`select n.nspname from pg_catalog.pg_namespace n where ${SYSTEM_SCHEMAS}`);
        for (const { nspname } of schemas.rows) {
          const schema = c.escapeIdentifier(nspname);
          await c.query(`grant usage on schema ${schema} to ${name}`);
          await c.query(`grant select, delete, truncate on all tables in schema ${schema} to ${name}`);
          await c.query(`grant select, usage on all sequences in schema ${schema} to ${name}`);
        }
        // A rule on DELETE, and a foreign key that cascades, sets null or a default, write as the owner.
        const writers = await c.query<{ rel: string }>(
          `select distinct r.ev_class::pg_catalog.regclass::text as rel from pg_catalog.pg_rewrite r where r.ev_type = '4'
           union
           select distinct f.confrelid::pg_catalog.regclass::text from pg_catalog.pg_constraint f where f.contype = 'f' and f.confdeltype in ('c', 'n', 'd')`,
        );
        for (const { rel } of writers.rows) await c.query(`revoke delete on table ${rel} from ${name}`);
        const objects = await c.query<{ oid: string }>(
          "select m.oid::text from pg_catalog.pg_largeobject_metadata m where m.lomowner = $1::pg_catalog.regrole",
          [lockRole(resource)],
        );
        for (const { oid } of objects.rows) await c.query(`grant select on large object ${Number(oid)} to ${name}`);
        await c.query(`grant connect on database ${name} to ${name}`);
        await c.query(`revoke temporary on database ${name} from ${name}`);
        await c.query("commit");
      });
      await this.admin((c) => this.terminateSessions(c, resource));
    } else {
      await this.inTenantDatabase(resource, async (c) => {
        await c.query("begin");
        await c.query(`reassign owned by ${lock} to ${name}`);
        await c.query(`drop owned by ${lock}`);
        await c.query(`grant connect, temporary on database ${name} to ${name}`);
        await c.query("commit");
      });
      await this.admin(async (c) => {
        await c.query(`grant ${LO_WRITER_ROLE} to ${name}`);
        await this.terminateSessions(c, resource);
        await c.query(`drop role if exists ${lock}`);
      });
    }
    return { sizeBytes: size, locked: over, changed: true };
  }

  /**
   * Size, connections and version from the server's own database; the table count with the
   * add-on's own credentials (so nothing of the tenant's runs with more than its rights), or
   * null when it cannot connect (all its connections taken).
   */
  async stats(resource: string, creds: DatabaseCredentials): Promise<DatabaseStats> {
    ident(resource);
    const server = await this.admin(async (c) => {
      const { rows } = await c.query<{ version: string; size: string; connections: string }>(
        `select pg_catalog.current_setting('server_version') as version, pg_catalog.pg_database_size(d.oid) as size,
                coalesce((select s.numbackends from pg_catalog.pg_stat_database s where s.datid = d.oid), 0) as connections
         from pg_catalog.pg_database d where d.datname = $1`,
        [resource],
      );
      if (!rows[0]) throw new Error(`no database ${resource}`);
      return rows[0];
    });
    const tables = await countTables(creds).catch(() => null);
    return { version: server.version, sizeBytes: Number(server.size), tables, connections: Number(server.connections) };
  }

  async connection(resource: string, password: string): Promise<DatabaseCredentials> {
    ident(resource);
    return this.credentials(resource, password);
  }

  private credentials(resource: string, password: string): DatabaseCredentials {
    return { host: this.publicHost, port: this.publicPort, database: resource, user: resource, password };
  }

  /** Refuses a plan the server has no connections left for (`replacing`: the add-on's current plan gives its own back). */
  private async requireRoom(c: pg.Client, plan: AddonPlan, replacing?: string): Promise<void> {
    const { rows } = await c.query<{ capacity: number; promised: number }>(
      `select pg_catalog.current_setting('max_connections')::int - pg_catalog.current_setting('superuser_reserved_connections')::int
              - pg_catalog.current_setting('reserved_connections')::int as capacity,
              coalesce(sum(r.rolconnlimit) filter (where r.rolconnlimit > 0 and r.rolname <> $1), 0)::int as promised
       from pg_catalog.pg_roles r where r.rolcanlogin and not r.rolsuper and r.rolname <> current_user`,
      [replacing ?? ""],
    );
    const { capacity, promised } = rows[0]!;
    if (promised + plan.connectionLimit > capacity) {
      throw new ApiError(
        "unavailable",
        `The database server has no room for another ${plan.name} database: its ${capacity} connections are all promised to other databases (${promised} in use by plans, ${plan.connectionLimit} asked). Try a smaller plan, or ask the platform's operator for another server.`,
      );
    }
  }

  /**
   * The role's own database, which PUBLIC cannot connect to, and the plan's temp-file limit
   * and the right to make large objects for the role (`name`: quoted, see ident).
   */
  private async makeDatabase(c: pg.Client, name: string, plan: AddonPlan): Promise<void> {
    await c.query(`alter role ${name} set temp_file_limit = '${plan.tempFileMb}MB'`);
    await c.query(`grant ${LO_WRITER_ROLE} to ${name}`);
    await c.query(`create database ${name} owner ${name} template template1`);
    await c.query(`revoke all on database ${name} from public`);
    await c.query(`grant connect, temporary on database ${name} to ${name}`);
  }

  /** Ends the sessions of the add-on's role, in any database; returns how many. */
  private async terminateSessions(c: pg.Client, resource: string): Promise<number> {
    const { rows } = await c.query<{ ended: boolean }>(
      "select pg_catalog.pg_terminate_backend(a.pid) as ended from pg_catalog.pg_stat_activity a where a.usename = $1 and a.pid <> pg_catalog.pg_backend_pid()",
      [resource],
    );
    return rows.filter((r) => r.ended).length;
  }

  /** One administration session for `fn` in the server's own database (the admin URL's). */
  private admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    return this.session(new URL(this.adminUrl), fn);
  }

  /** One administration session inside a tenant's database, for the storage lock alone. */
  private inTenantDatabase<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const url = new URL(this.adminUrl);
    url.pathname = `/${ident(database).slice(1, -1)}`;
    return this.session(url, fn);
  }

  /** A session with SAFE_SESSION_OPTIONS, refused when it is a superuser's or runs as another role. */
  private async session<T>(url: URL, fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 10_000, options: SAFE_SESSION_OPTIONS });
    client.on("error", () => {});
    await client.connect();
    try {
      const { rows } = await client.query<{ superuser: boolean; same: boolean; path: string }>(
        "select r.rolsuper as superuser, current_user = session_user as same, pg_catalog.current_setting('search_path') as path from pg_catalog.pg_roles r where r.rolname = session_user",
      );
      const me = rows[0];
      if (!me || me.superuser) {
        throw new Error(
          `ADDON_POSTGRES_ADMIN_URL names a superuser: dynoplane administers the add-on server as a role without one (${ADMIN_ROLE}, with CREATEROLE and CREATEDB; see the README)`,
        );
      }
      if (!me.same || me.path !== "pg_catalog,pg_temp") throw new Error("the add-on server did not take the session's safe settings");
      // Roles the administration role makes are its own to use (REASSIGN OWNED, DROP DATABASE).
      await client.query("set createrole_self_grant = 'set, inherit'");
      return await fn(client);
    } catch (err) {
      await client.query("rollback").catch(() => {});
      throw err;
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/** One session as the add-on's own role, in its own database, with SAFE_SESSION_OPTIONS. */
async function asTenant<T>(creds: DatabaseCredentials, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(creds), connectionTimeoutMillis: 10_000, options: SAFE_SESSION_OPTIONS });
  client.on("error", () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Tables in a database (as `pg_tables` counts them), read with its own role's credentials. */
function countTables(creds: DatabaseCredentials): Promise<number> {
  return asTenant(creds, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      `select count(*) as n from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')`,
    );
    return Number(rows[0]!.n);
  });
}

/** Refuses extensions the server lacks or does not let a database's owner make (PostgreSQL's `trusted`). */
async function requireTrusted(c: pg.Client, extensions: string[], unchanged = "nothing was reset"): Promise<void> {
  if (extensions.length === 0) return;
  const { rows } = await c.query<{ name: string }>(
    "select distinct v.name from pg_catalog.pg_available_extension_versions v where v.trusted and v.name = any($1::text[])",
    [extensions],
  );
  const missing = extensions.filter((e) => !rows.some((r) => r.name === e));
  if (missing.length > 0) {
    throw new ApiError(
      "invalid_params",
      `This server cannot make ${missing.join(", ")} for a database's owner; ${unchanged}. Extensions it can make: those PostgreSQL marks trusted (pgcrypto, hstore, citext, uuid-ossp, …).`,
    );
  }
}

/** Makes extensions in an add-on's database as its own role (trusted ones alone, see requireTrusted). */
async function createExtensions(creds: DatabaseCredentials, extensions: string[]): Promise<void> {
  if (extensions.length === 0) return;
  await asTenant(creds, async (c) => {
    // Made where a user of the database finds them (the safe session's path puts new objects
    // in its temporary schema, gone with the session); an extension that names its own schema goes there.
    await c.query("set search_path = public");
    for (const e of extensions) await c.query(`create extension if not exists ${c.escapeIdentifier(e)}`);
  });
}

/**
 * Makes extensions in an add-on's database as its own role, before a restore into it
 * (`pg:backups:restore --extensions`); one it may not make is refused before any is made.
 */
export async function addExtensions(creds: DatabaseCredentials, extensions: string[]): Promise<void> {
  if (extensions.length === 0) return;
  await asTenant(creds, (c) => requireTrusted(c, extensions, "nothing was restored"));
  await createExtensions(creds, extensions);
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
    // With what a restore may have left: its fresh database, the database it replaced.
    for (const db of [resource, restoreStaging(resource), replacedName(resource)]) await this.call("DELETE", `/databases/${db}`, undefined, [404]);
    await this.call("DELETE", `/roles/${resource}`, undefined, [404]);
  }

  /** With the role's own credentials: a role may end its own sessions. */
  async endSessions(resource: string, creds: DatabaseCredentials): Promise<number> {
    ident(resource);
    return asTenant(creds, async (c) => {
      const { rows } = await c.query<{ ended: boolean }>(
        "select pg_catalog.pg_terminate_backend(a.pid) as ended from pg_catalog.pg_stat_activity a where a.usename = current_user and a.pid <> pg_catalog.pg_backend_pid()",
      );
      return rows.filter((r) => r.ended).length;
    });
  }

  /** Neon drops a database with its sessions; the role (and its password) stays. */
  async reset(resource: string, _plan: AddonPlan, creds: DatabaseCredentials, extensions: string[]): Promise<void> {
    ident(resource);
    if (extensions.length > 0) await asTenant(creds, (c) => requireTrusted(c, extensions));
    await this.call("DELETE", `/databases/${resource}`, undefined, [404]);
    await this.call("POST", "/databases", { database: { name: resource, owner_name: resource } });
    await createExtensions(creds, extensions);
  }

  /** On Neon a role reaches every database it may connect to: the restore runs as the add-on's own role. */
  async prepareRestore(resource: string, _plan: AddonPlan, creds: DatabaseCredentials): Promise<DatabaseCredentials> {
    const staging = restoreStaging(resource);
    ident(staging);
    await this.call("DELETE", `/databases/${staging}`, undefined, [404]);
    await this.call("POST", "/databases", { database: { name: staging, owner_name: resource } });
    return { ...creds, database: staging };
  }

  /**
   * The add-on's database is renamed aside, then the restored one into its place; if that
   * fails, the add-on's goes back. The one aside is dropped by `dropReplaced`.
   */
  async finishRestore(resource: string): Promise<void> {
    ident(resource);
    await this.call("DELETE", `/databases/${replacedName(resource)}`, undefined, [404]);
    await this.call("PATCH", `/databases/${resource}`, { database: { name: replacedName(resource) } });
    try {
      await this.call("PATCH", `/databases/${restoreStaging(resource)}`, { database: { name: resource } });
    } catch (err) {
      await this.call("PATCH", `/databases/${replacedName(resource)}`, { database: { name: resource } }).catch(() => {});
      throw err;
    }
  }

  async dropReplaced(resource: string): Promise<void> {
    ident(resource);
    await this.call("DELETE", `/databases/${replacedName(resource)}`, undefined, [404]);
  }

  async discardRestore(resource: string): Promise<void> {
    const staging = restoreStaging(resource);
    ident(staging);
    await this.call("DELETE", `/databases/${staging}`, undefined, [404]);
  }

  async stats(resource: string, creds: DatabaseCredentials): Promise<DatabaseStats> {
    ident(resource);
    return asTenant(creds, async (c) => {
      const { rows } = await c.query<{ version: string; size: string; connections: string; tables: string }>(
        `select pg_catalog.current_setting('server_version') as version, pg_catalog.pg_database_size(pg_catalog.current_database()) as size,
                (select count(*) from pg_catalog.pg_stat_activity a where a.datname = pg_catalog.current_database()) as connections,
                (select count(*) from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
                 where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema')) as tables`,
      );
      const r = rows[0]!;
      return { version: r.version, sizeBytes: Number(r.size), tables: Number(r.tables), connections: Number(r.connections) };
    });
  }

  connection(resource: string, password: string): Promise<DatabaseCredentials> {
    ident(resource);
    return this.credentials(resource, password);
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
