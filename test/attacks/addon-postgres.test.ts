import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { enforceAddonStorage } from "../../src/cron/enforce-addon-storage.ts";
import type { Bindings } from "../../src/env.ts";
import { servicesAddress } from "../../src/agent/sandbox/network.ts";
import { addonPostgresUser, movedServiceDir, postgresUser } from "../../src/local/postgres-server.ts";
import { PLANS } from "../../src/services/addons/catalog.ts";
import { AdminUrlProvider } from "../../src/services/addons/providers/postgres.ts";
import { api, platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { destroyApp } from "../support/slugs.ts";
import { asTenant, configOf, provisionDatabase, scalar } from "./support.ts";

afterAll(closeDb);

const root = process.getuid?.() === 0;

/** An over-the-limit-then-under storage run for one add-on, as the 10-minute cron does it. */
async function storageRun(addonId: string, url: string, limitBytes: number) {
  const provider = new AdminUrlProvider(platform().addonDatabaseUrl, new URL(url).host);
  return enforceAddonStorage(await db(), {} as Bindings, {
    provider,
    limitBytes: (a) => (a.id === addonId ? limitBytes : Number.MAX_SAFE_INTEGER),
    log: async () => {},
  });
}

/** The PIDs whose command line starts with `postgres -D <dir>` (a cluster's postmaster). */
function postmasterOf(dataDir: string): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (path.basename(argv[0] ?? "") === "postgres" && argv[1] === "-D" && argv[2] === dataDir) return Number(entry);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);

describe("a tenant against the add-on Postgres server", () => {
  it("stays no superuser after planting catalog look-alikes and a search_path for the platform's sessions (CVE-2018-1058), and pg:info, the storage cron and rotation still work", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const { addon, url } = await provisionDatabase(owner, app.name);
      const role = new URL(url).username;
      // The escalation as it was done: a function that makes its caller's tenant a superuser when a
      // superuser runs it, catalog names over it in a schema of the tenant's, and that schema first
      // on the database's search_path; every call is written down, whoever makes it.
      await asTenant(
        url,
        "create table public.calls (session_user_name text, current_user_name text)",
        "create schema evil",
        `create function evil.trap() returns setof pg_catalog.pg_namespace language plpgsql as $$
         begin
           insert into public.calls values (session_user, current_user);
           if (select rolsuper from pg_catalog.pg_roles where rolname = current_user) then
             execute 'alter role ${role} superuser';
           end if;
           return query select * from pg_catalog.pg_namespace;
         end $$`,
        "grant usage on schema evil to public",
        "grant all on table public.calls to public",
        "create view evil.pg_namespace as select * from evil.trap()",
        "create view evil.pg_tables as select n.nspname::name as schemaname, 'x'::name as tablename from evil.trap() n",
        "create view evil.pg_database as select d.* from pg_catalog.pg_database d, evil.trap() t limit 1",
        "create view evil.pg_stat_activity as select a.* from pg_catalog.pg_stat_activity a, evil.trap() t",
        "create view evil.pg_roles as select r.* from pg_catalog.pg_roles r, evil.trap() t",
        `alter database ${role} set search_path = evil, pg_catalog, public`,
        // A role planted for every session of the database: the platform's would run as the tenant.
        `alter database ${role} set role = '${role}'`,
        "create table public.kept (v int)",
      );
      // pg:info (its table count), the storage cron (locking and unlocking), and rotation.
      const info = await api(`/client/v11/databases/${addon.id}`, { token: owner.token });
      expect(info.status, info.text).toBe(200);
      const row = (name: string) => info.body.info.find((i: { name: string }) => i.name === name)?.values[0];
      expect(row("Tables")).toBe("2");
      expect(row("PG Version")).toMatch(/^\d+/);
      const locked = await storageRun(addon.id, url, 1024);
      expect(locked.locked).toBe(1);
      const unlocked = await storageRun(addon.id, url, Number.MAX_SAFE_INTEGER);
      expect(unlocked.unlocked).toBe(1);
      const rotated = await api(`/postgres/v0/databases/${addon.id}/credentials_rotation`, { method: "POST", token: owner.token, body: {} });
      expect(rotated.status, rotated.text).toBe(200);
      const newUrl = (await configOf(owner.token, app.name)).DATABASE_URL!;
      expect(newUrl).not.toBe(url);
      // Defence: SAFE_SESSION_OPTIONS (search_path=pg_catalog,pg_temp, role=none) and
      // schema-qualified names: no platform session ever resolved a name through the tenant's schema.
      expect((await asTenant(newUrl, "select * from public.calls"))[0]!.rows).toEqual([]);
      expect(await scalar(newUrl, `select rolsuper from pg_catalog.pg_roles where rolname = '${role}'`)).toBe(false);
      await expect(asTenant(newUrl, "copy public.kept from program 'id'")).rejects.toThrow(/permission denied|must be superuser|pg_execute_server_program/);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("is administered by a role without superuser, and the superuser cannot sign in over the network", async () => {
    const admin = platform().addonDatabaseUrl;
    // Defence: the administration role has CREATEROLE and CREATEDB, never SUPERUSER.
    const me = (await asTenant(admin, "select rolsuper, rolcreaterole, rolcreatedb from pg_catalog.pg_roles where rolname = current_user"))[0]!.rows[0];
    expect(me).toEqual({ rolsuper: false, rolcreaterole: true, rolcreatedb: true });
    // Defence: pg_hba admits `postgres` on the server's private Unix socket alone.
    const superuser = new URL(admin);
    superuser.username = "postgres";
    superuser.password = "whatever-it-is";
    await expect(asTenant(superuser.toString(), "select 1")).rejects.toThrow(/pg_hba.conf rejects connection/);
    if (root) {
      // Where dynos reach it: the services address.
      const fromDynos = new URL(superuser);
      fromDynos.hostname = servicesAddress();
      await expect(asTenant(fromDynos.toString(), "select 1")).rejects.toThrow(/pg_hba.conf rejects connection/);
      const adminFromDynos = new URL(admin);
      adminFromDynos.hostname = servicesAddress();
      await expect(asTenant(adminFromDynos.toString(), "select 1")).rejects.toThrow(/pg_hba.conf rejects connection/);
    }
  });

  it("keeps a tenant to its own database: not another's, not the server's own, and no role, database or server program of its own", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const other = await makeApp(owner);
    try {
      const { url } = await provisionDatabase(owner, app.name);
      const { url: otherUrl } = await provisionDatabase(owner, other.name);
      // Defence: pg_hba's `sameuser`, and CONNECT revoked from PUBLIC.
      const crossed = url.replace(/\/[^/]+$/, `/${new URL(otherUrl).pathname.slice(1)}`);
      await expect(asTenant(crossed, "select 1")).rejects.toThrow(/no pg_hba.conf entry|permission denied/);
      for (const own of ["postgres", "template1"]) {
        await expect(asTenant(url.replace(/\/[^/]+$/, `/${own}`), "select 1")).rejects.toThrow(/no pg_hba.conf entry|permission denied/);
      }
      await expect(asTenant(url, "create role intruder")).rejects.toThrow(/permission denied/);
      await expect(asTenant(url, "create database another")).rejects.toThrow(/permission denied/);
      await expect(asTenant(url, "create table t (v text); copy t from program 'id'")).rejects.toThrow(
        /permission denied|must be superuser|pg_execute_server_program/,
      );
      await expect(asTenant(url, "select pg_catalog.pg_read_file('/etc/passwd')")).rejects.toThrow(/permission denied/);
      // Temporary files are bounded by the plan, and a tenant cannot lift the bound.
      expect(await scalar(url, "select setting::int from pg_catalog.pg_settings where name = 'temp_file_limit'")).toBe(PLANS[0]!.tempFileMb * 1024);
      await expect(asTenant(url, "set temp_file_limit = -1")).rejects.toThrow(/permission denied/);
    } finally {
      await destroyApp(owner.token, app.name);
      await destroyApp(owner.token, other.name);
    }
  });

  it.runIf(root)("runs as a user of its own, in a cgroup with a memory and CPU cap, and cannot read the control plane's data", async () => {
    const home = platform().home;
    const services = (dir: string) => [path.join(home, dir), path.join(movedServiceDir(home), dir)];
    const addonPid = services("addon-postgres").map(postmasterOf).find(Boolean);
    const controlDir = services("postgres").find((d) => postmasterOf(d));
    expect(addonPid, "the add-on server's postmaster").toBeDefined();
    expect(controlDir, "the control plane's data directory").toBeDefined();
    // Defence: its own OS user (not the control plane's `postgres`).
    const addonUser = addonPostgresUser()!;
    expect(uidOf(addonPid!)).toBe(addonUser.uid);
    expect(addonUser.uid).not.toBe(postgresUser()!.uid);
    // Defence: a cgroup of its own with a memory cap (its backends are in it too).
    const cgroups = readFileSync(`/proc/${addonPid}/cgroup`, "utf8");
    expect(cgroups).toMatch(/dynoplane-services\/addon-postgres-/);
    const memory = /^\d+:memory:(.+)$/m.exec(cgroups)?.[1] ?? /^0::(.+)$/m.exec(cgroups)?.[1];
    const limitFile = ["/sys/fs/cgroup/memory", "/sys/fs/cgroup"]
      .flatMap((base) => [path.join(base, memory!, "memory.limit_in_bytes"), path.join(base, memory!, "memory.max")])
      .find((f) => spawnSync("test", ["-f", f]).status === 0)!;
    expect(Number(readFileSync(limitFile, "utf8"))).toBeLessThan(64 * 1024 ** 3);
    // Defence: each data directory is 0700 and its own user's; the add-on server's user reads neither the other's files.
    const read = spawnSync("cat", [path.join(controlDir!, "PG_VERSION")], { uid: addonUser.uid, gid: addonUser.gid });
    expect(read.status).not.toBe(0);
    expect(read.stderr.toString()).toMatch(/Permission denied/);
    const list = spawnSync("ls", [path.join(controlDir!, "base")], { uid: addonUser.uid, gid: addonUser.gid });
    expect(list.status).not.toBe(0);
  });
});

describe("a locked (over-quota) database", () => {
  it("takes no write by any path made before the lock, and takes writes again once it is under", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const { addon, url } = await provisionDatabase(owner, app.name);
      const made = await asTenant(
        url,
        "create table t (v text)",
        "create table parent (id int primary key)",
        "create table child (ref int references parent on delete cascade, v text)",
        "create table noisy (v text)",
        "create rule also_write as on delete to noisy do also insert into t values ('rule')",
        "create function definer_write() returns int language sql security definer as $$ insert into t values ('definer') returning 1 $$",
        "insert into parent values (1)",
        "insert into child values (1, 'x')",
        "insert into noisy values ('n')",
        "select pg_catalog.lo_from_bytea(0, 'before') as oid",
      );
      const oid = Number(made.at(-1)!.rows[0].oid);
      expect((await storageRun(addon.id, url, 1024)).locked).toBe(1);
      // Defence: functions go back to the tenant (definer = tenant), DELETE is withheld where a rule or
      // cascade writes as the owner, TEMPORARY and making large objects are taken away, COPY needs INSERT.
      const refused: Array<[string, RegExp]> = [
        ["select definer_write()", /permission denied/],
        ["insert into t values ('plain')", /permission denied/],
        ["copy t from stdin", /permission denied/],
        ["create temporary table tmp (v int)", /permission denied/],
        ["create table t2 (v int)", /permission denied/],
        ["create schema s2", /permission denied/],
        ["select pg_catalog.lo_from_bytea(0, 'after')", /permission denied/],
        ["select pg_catalog.lo_create(0)", /permission denied/],
        [`select pg_catalog.lo_put(${oid}, 0, 'x')`, /permission denied/],
        ["delete from noisy", /permission denied/],
        ["delete from parent", /permission denied/],
        ["update t set v = 'x'", /permission denied/],
        ["create or replace function definer_write() returns int language sql as $$ select 1 $$", /permission denied|must be owner/],
      ];
      for (const [sql, error] of refused) await expect(asTenant(url, sql), sql).rejects.toThrow(error);
      // What it keeps: reads, and the ways to shrink.
      expect(await scalar(url, "select count(*)::int from t")).toBe(0);
      expect(await scalar(url, `select pg_catalog.convert_from(pg_catalog.lo_get(${oid}), 'UTF8')`)).toBe("before");
      await asTenant(url, "delete from child", "truncate noisy");
      expect(await scalar(url, "select count(*)::int from t")).toBe(0);
      // Back under: everything as before.
      expect((await storageRun(addon.id, url, Number.MAX_SAFE_INTEGER)).unlocked).toBe(1);
      await asTenant(
        url,
        "select definer_write()",
        "insert into t values ('plain')",
        "create temporary table tmp (v int)",
        "select pg_catalog.lo_from_bytea(0, 'after')",
        "delete from parent",
      );
      expect(await scalar(url, "select count(*)::int from t")).toBe(2);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});

describe("connections of the add-on server", () => {
  it("never promises more than it has: a plan beyond what is left is refused and makes nothing", async () => {
    const provider = new AdminUrlProvider(platform().addonDatabaseUrl);
    const greedy = { ...PLANS[0]!, name: "heroku-postgresql:greedy", connectionLimit: 100_000 };
    const resource = `addon_greedy_${Date.now()}`;
    await expect(provider.provision(resource, greedy)).rejects.toThrow(/no room for another heroku-postgresql:greedy database/);
    expect(await scalar(platform().addonDatabaseUrl, `select count(*)::int from pg_catalog.pg_roles where rolname = '${resource}'`)).toBe(0);
    const promised = await scalar<number>(
      platform().addonDatabaseUrl,
      "select coalesce(sum(rolconnlimit) filter (where rolconnlimit > 0), 0)::int from pg_catalog.pg_roles where rolcanlogin and not rolsuper",
    );
    const capacity = await scalar<number>(
      platform().addonDatabaseUrl,
      "select current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int - current_setting('reserved_connections')::int",
    );
    expect(promised).toBeLessThanOrEqual(capacity);
  });

  it("with eight add-ons of one account holding every connection they may, another account's database still connects", async () => {
    const greedy = await makeAccount();
    const victim = await makeAccount();
    const apps = await Promise.all(Array.from({ length: 8 }, () => makeApp(greedy)));
    const victimApp = await makeApp(victim);
    const held: pg.Client[] = [];
    try {
      const urls = (await Promise.all(apps.map((a) => provisionDatabase(greedy, a.name)))).map((d) => d.url);
      const { url: victimUrl } = await provisionDatabase(victim, victimApp.name);
      for (const url of urls) {
        for (let i = 0; i < PLANS[0]!.connectionLimit; i++) {
          const c = new pg.Client({ connectionString: url });
          c.on("error", () => {});
          await c.connect();
          held.push(c);
        }
        // Defence: each role's connection limit, from its plan.
        await expect(asTenant(url, "select 1")).rejects.toThrow(/too many connections for role/);
      }
      expect(held.length).toBe(8 * PLANS[0]!.connectionLimit);
      // Defence: the server promises no more connections than it has, so the victim's are there.
      expect(await scalar(victimUrl, "select 1 as one")).toBe(1);
    } finally {
      await Promise.all(held.map((c) => c.end().catch(() => {})));
      await Promise.all(apps.map((a) => destroyApp(greedy.token, a.name)));
      await destroyApp(victim.token, victimApp.name);
    }
  });
});
