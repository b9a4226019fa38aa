import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { lineText, wholeLog } from "../support/log-app.ts";
import { destroyApp } from "../support/slugs.ts";

// The operational `pg:` commands with the unmodified heroku CLI 11.10.0: pg:ps, pg:locks,
// pg:blocking, pg:kill, pg:table-size, pg:outliers and pg:calls run the machine's psql with the app's own
// credentials; pg:killall and pg:reset are the data API's. Sessions of the test's own stand
// for an app's: one holds a row in an open transaction, another waits on it.

afterAll(closeDb);

/** A session on the database, as an app's; one the server ends fails its next query. */
async function session(url: string) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000, application_name: "pg-operations-test" });
  client.on("error", () => {});
  await client.connect();
  const pid = Number((await client.query<{ pid: number }>("select pg_backend_pid() as pid")).rows[0]!.pid);
  return { client, pid };
}

describe("heroku pg operational commands", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  let url: string;
  let addonName: string;
  const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 90_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    const created = await api(`/apps/${app.name}/addons`, { method: "POST", token: user.token, body: { plan: "heroku-postgresql:essential-0" } });
    expect(created.status, created.text).toBe(201);
    addonName = created.body.name;
    await vi.waitFor(
      async () => {
        const addon = await api(`/apps/${app.name}/addons/${addonName}`, { token: user.token });
        expect(addon.body.state).toBe("provisioned");
      },
      { timeout: 60_000, interval: 250 },
    );
    url = (await api(`/apps/${app.name}/config-vars`, { token: user.token })).body.DATABASE_URL;
    const setup = await session(url);
    await setup.client.query("create table orders (id serial primary key, total int); insert into orders (total) select g from generate_series(1, 5000) g");
    await setup.client.end();
  }, 600_000);

  afterAll(() => destroyApp(user.token, app.name));

  it("pg:ps, pg:locks and pg:blocking show a transaction holding a row and the query waiting on it; pg:kill cancels the waiting query", async () => {
    const holder = await session(url);
    const waiter = await session(url);
    try {
      await holder.client.query("begin; update orders set total = 0 where id = 1");
      const waiting = waiter.client.query("update orders set total = total + 1 where id = 1").then(
        () => "updated",
        (err: Error) => err.message,
      );
      await vi.waitFor(
        async () => {
          const ps = await cli(["pg:ps"]);
          expect(ps.code, ps.stderr).toBe(0);
          expect(ps.stdout).toMatch(new RegExp(`^\\s*${waiter.pid}\\s*\\|.*update orders set total`, "m"));
        },
        { timeout: 20_000, interval: 500 },
      );

      const locks = await cli(["pg:locks"]);
      expect(locks.code, locks.stderr).toBe(0);
      expect(locks.stdout).toMatch(new RegExp(`^\\s*${holder.pid}\\s*\\|.*\\|\\s*begin; update orders set total = 0 where id = 1`, "m"));

      const blocking = await cli(["pg:blocking"]);
      expect(blocking.code, blocking.stderr).toBe(0);
      expect(blocking.stdout).toMatch(
        new RegExp(
          `^\\s*${waiter.pid}\\s*\\|\\s*begin; update orders set total = 0.*\\|\\s*${holder.pid}\\s*\\|\\s*update orders set total = total \\+ 1`,
          "m",
        ),
      );

      const kill = await cli(["pg:kill", String(waiter.pid)]);
      expect(kill.code, kill.stderr).toBe(0);
      expect(await waiting).toMatch(/canceling statement due to user request/);
      // Cancelled, not ended: the waiting session is still there.
      expect((await waiter.client.query("select 1 as one")).rows[0].one).toBe(1);
    } finally {
      await holder.client.query("rollback").catch(() => {});
      await Promise.all([holder.client.end().catch(() => {}), waiter.client.end().catch(() => {})]);
    }
  });

  it("pg:table-size lists the app's table", async () => {
    const sizes = await cli(["pg:table-size"]);
    expect(sizes.code, sizes.stderr).toBe(0);
    expect(sizes.stdout).toMatch(/^\s*orders\s*\|\s*\d+ kB/m);
  });

  it("pg:outliers and pg:calls show the app's own statements from pg_stat_statements; pg:outliers --reset clears them", async () => {
    const s = await session(url);
    for (let i = 0; i < 3; i++) await s.client.query("select count(*) from orders where total > 4000");
    await s.client.end();
    const outliers = await cli(["pg:outliers"]);
    expect(outliers.code, outliers.stderr).toBe(0);
    expect(outliers.stdout).toMatch(/select count\(\*\) from orders where total > \$1/);
    const calls = await cli(["pg:calls"]);
    expect(calls.code, calls.stderr).toBe(0);
    // total time | share of it | calls | I/O time | statement
    expect(calls.stdout).toMatch(/\|\s*3\s*\|[^|]*\|\s*select count\(\*\) from orders where total > \$1/);
    const reset = await cli(["pg:outliers", "--reset"]);
    expect(reset.code, reset.stderr).toBe(0);
    const after = await cli(["pg:calls"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).not.toContain("from orders where total");
  });

  it("pg:killall ends every session of the database's credential, and new ones connect", async () => {
    const a = await session(url);
    const b = await session(url);
    const killall = await cli(["pg:killall"]);
    expect(killall.code, killall.stdout + killall.stderr).toBe(0);
    expect(killall.stderr).toMatch(/Terminating connections for all credentials\.\.\. done/);
    for (const s of [a, b]) {
      await expect(s.client.query("select 1")).rejects.toThrow();
      await s.client.end().catch(() => {});
    }
    const again = await session(url);
    expect((await again.client.query("select count(*)::int as n from orders")).rows[0].n).toBe(5000);
    await again.client.end();
  });

  it("pg:reset --confirm empties the database, keeps its URL, makes the extensions asked for, and says so in the log", async () => {
    const open = await session(url);
    const reset = await cli(["pg:reset", "DATABASE", "--confirm", app.name, "--extensions", "pgcrypto,citext"]);
    expect(reset.code, reset.stdout + reset.stderr).toBe(0);
    expect(reset.stderr).toMatch(new RegExp(`Resetting ${addonName}\\.\\.\\. done`));
    // The open session went with the old database.
    await expect(open.client.query("select 1")).rejects.toThrow();
    await open.client.end().catch(() => {});

    expect((await api(`/apps/${app.name}/config-vars`, { token: user.token })).body.DATABASE_URL).toBe(url);
    const after = await session(url);
    const tables = await after.client.query("select tablename from pg_tables where schemaname = 'public'");
    expect(tables.rows).toEqual([]);
    const extensions = await after.client.query<{ extname: string }>("select extname from pg_extension order by extname");
    expect(extensions.rows.map((r) => r.extname)).toEqual(["citext", "pg_stat_statements", "pgcrypto", "plpgsql"]);
    // The credential owns the new database: it can make tables again.
    await after.client.query("create table again (x int)");
    await after.client.end();

    const log = (await wholeLog(user.token, app.name)).map(lineText);
    expect(log.filter((l) => l === `Reset ${addonName} by user ${user.email}`)).toHaveLength(1);
  });

  it("pg:reset refuses an extension a database's owner cannot make, and changes nothing", async () => {
    const reset = await cli(["pg:reset", "DATABASE", "--confirm", app.name, "--extensions", "pgcrypto,file_fdw"]);
    expect(reset.code).not.toBe(0);
    expect(reset.stderr).toMatch(/cannot make file_fdw for a database's owner; nothing was reset/);
    const s = await session(url);
    expect((await s.client.query("select count(*)::int as n from pg_tables where tablename = 'again'")).rows[0].n).toBe(1);
    await s.client.end();
  });
});
