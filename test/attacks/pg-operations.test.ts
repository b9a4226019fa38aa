import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp } from "../support/factories.ts";
import { destroyApp } from "../support/slugs.ts";
import { asTenant, provisionDatabase, scalar } from "./support.ts";

// The data API's operations on a database (`pg:killall`, `pg:reset`) against another
// tenant's database, a reset's extensions as a way to run statements of one's choosing, and
// pg_stat_statements (`pg:outliers`, `pg:calls`) as a window on another tenant's statements.
// Defences: every data route finds the database through the caller's own apps (one lookup,
// src/routes/data.ts); an extension is a name checked against the server's trusted ones; the
// statistics are read through a view of the session's own role and database alone
// (templateSetupStatements), the extension's own function closed to tenants.

afterAll(closeDb);

describe("a tenant against another's database through the data API", { timeout: 120_000 }, () => {
  it("can neither end another tenant's sessions nor reset its database, by the add-on's id or its name", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    const mine = await makeApp(attacker);
    try {
      const { addon, url } = await provisionDatabase(victim, theirs.name);
      await asTenant(url, "create table secrets (v text)", "insert into secrets values ('kept')");
      const open = new pg.Client({ connectionString: url });
      let ended: Error | undefined;
      open.on("error", (err) => (ended = err));
      await open.connect();
      try {
        // Answered as a database that does not exist is: nothing tells the two apart.
        const none = crypto.randomUUID();
        for (const ref of [addon.id, addon.name, none]) {
          const killall = await api(`/client/v11/databases/${ref}/connection_reset`, { method: "POST", token: attacker.token });
          expect(killall.status, killall.text).toBe(404);
          expect(killall.body).toEqual({ id: "not_found", message: `Couldn't find that add-on: ${ref}.`, resource: "addon" });
          const reset = await api(`/client/v11/databases/${ref}/reset`, { method: "PUT", token: attacker.token, body: {} });
          expect(reset.status, reset.text).toBe(404);
          expect(reset.body).toEqual({ id: "not_found", message: `Couldn't find that add-on: ${ref}.`, resource: "addon" });
        }
        // Nor without a token, or with a token that is no one's.
        for (const token of [undefined, `${attacker.token.slice(0, -4)}0000`]) {
          const killall = await api(`/client/v11/databases/${addon.id}/connection_reset`, { method: "POST", token });
          const reset = await api(`/client/v11/databases/${addon.id}/reset`, { method: "PUT", token, body: {} });
          for (const res of [killall, reset]) {
            expect(res.status, res.text).toBe(401);
            expect(res.body.id).toBe("unauthorized");
          }
        }
        // Nothing happened to the victim's database or its open session.
        expect((await open.query("select v from secrets")).rows).toEqual([{ v: "kept" }]);
        expect(ended).toBeUndefined();
      } finally {
        await open.end().catch(() => {});
      }
      // The attacker's own app sees no such database either.
      const viaOwnApp = await api(`/apps/${mine.name}/addons/${addon.id}`, { token: attacker.token });
      expect(viaOwnApp.status).toBe(404);
    } finally {
      await destroyApp(victim.token, theirs.name);
      await destroyApp(attacker.token, mine.name);
    }
  });

  it("cannot run a statement of its choosing, or make an untrusted extension, through a reset's extensions; nothing is reset", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const { addon, url } = await provisionDatabase(owner, app.name);
      await asTenant(url, "create table kept (v int)", "insert into kept values (1)");
      for (const [extensions, message] of [
        [['pgcrypto"; create role evil superuser; --'], /Not an extension's name/],
        [["pgcrypto; select 1"], /Not an extension's name/],
        [["adminpack"], /cannot make adminpack for a database's owner; nothing was reset/],
        [["file_fdw"], /cannot make file_fdw for a database's owner; nothing was reset/],
        [["no_such_extension"], /cannot make no_such_extension/],
      ] as const) {
        const res = await api(`/client/v11/databases/${addon.id}/reset`, { method: "PUT", token: owner.token, body: { extensions } });
        expect(res.status, res.text).toBe(422);
        expect(res.body.id).toBe("invalid_params");
        expect(res.body.message).toMatch(message);
      }
      expect(await scalar(url, "select count(*)::int from kept")).toBe(1);
      expect(await scalar(url, "select count(*)::int from pg_roles where rolname = 'evil'")).toBe(0);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("sees neither the statements nor the statistics of another tenant's database in pg_stat_statements, and cannot reset them", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    const mine = await makeApp(attacker);
    try {
      const { url: victimUrl } = await provisionDatabase(victim, theirs.name);
      const { url } = await provisionDatabase(attacker, mine.name);
      await asTenant(
        victimUrl,
        "create table ledger (v text)",
        "select count(*) from ledger where v = 'victim-marker'",
        "select count(*) from ledger where v = 'victim-marker'",
      );
      await asTenant(url, "create table attacker_probe (x int)", "select count(*) from attacker_probe");
      const stats = "dynoplane_stats.pg_stat_statements";
      // Through the view the CLI reads: its own statement, nothing of another database or role.
      expect(await scalar(url, `select count(*)::int from ${stats} where query like 'select count(*) from attacker_probe%'`)).toBe(1);
      expect(await scalar(url, `select count(*)::int from ${stats} where query like '%ledger%'`)).toBe(0);
      expect(await scalar(url, `select count(*)::int from ${stats} where dbid <> (select oid from pg_database where datname = current_database())`)).toBe(0);
      expect(await scalar(url, `select count(*)::int from ${stats} where userid <> (select oid from pg_roles where rolname = current_user)`)).toBe(0);
      // Around it: the extension's own function, its reset and its info view are closed; the view and the schema are not the tenant's to change.
      for (const sql of [
        "select count(*) from dynoplane_stats.pg_stat_statements(true)",
        "select dynoplane_stats.pg_stat_statements_reset()",
        "select dynoplane_stats.pg_stat_statements_reset(0, 0, 0)",
        "select * from dynoplane_stats.pg_stat_statements_info",
        "create or replace view dynoplane_stats.pg_stat_statements as select * from dynoplane_stats.pg_stat_statements(true)",
        "create function dynoplane_stats.own_statements() returns int language sql as 'select 1'",
        "drop view dynoplane_stats.pg_stat_statements",
        "alter function dynoplane_stats.own_statements() security invoker",
        "drop extension pg_stat_statements",
      ]) {
        await expect(asTenant(url, sql), sql).rejects.toThrow(/permission denied|must be owner/);
      }
      // The reset the CLI calls for Essential plans resets the caller's own statements alone.
      await asTenant(url, "select _heroku.pg_stat_statements_reset()");
      expect(await scalar(url, `select count(*)::int from ${stats} where query like 'select count(*) from attacker_probe%'`)).toBe(0);
      expect(await scalar(victimUrl, `select calls::int from ${stats} where query like 'select count(*) from ledger where v = $1%'`)).toBe(2);
    } finally {
      await destroyApp(victim.token, theirs.name);
      await destroyApp(attacker.token, mine.name);
    }
  });
});
