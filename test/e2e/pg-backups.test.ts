import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, eq } from "drizzle-orm";
import pg from "pg";
import { pgBackupSchedules, pgTransfers } from "../../src/db/schema/index.ts";
import { pgClientTools } from "../../src/local/pg-client.ts";
import { PLANS } from "../../src/services/addons/catalog.ts";
import { AdminUrlProvider, databaseUrl } from "../../src/services/addons/providers/postgres.ts";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { api, fireCron, platform, tlsAgent } from "../support/api.ts";
import { query } from "../support/sql.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { ensurePgClient, PG_CLIENT_TIMEOUT_MS } from "../support/pg-client.ts";
import { wholeLog } from "../support/log-app.ts";
import { destroyApp } from "../support/slugs.ts";

// PGBackups with the unmodified heroku CLI 11.10.0: a backup is a pg_dump a host runs in a
// sandbox of the app's with the database's own credentials, stored in the blob store; the
// CLI lists it, shows its log, downloads it over a signed URL and restores it with
// pg_restore, again on a host.

afterAll(closeDb);

describe("heroku pg:backups", { timeout: 240_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  let url: string;
  let addonName: string;
  let addonId: string;
  const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 200_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    await ensurePgClient();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    const created = await api(`/apps/${app.name}/addons`, { method: "POST", token: user.token, body: { plan: "heroku-postgresql:essential-0" } });
    expect(created.status, created.text).toBe(201);
    addonName = created.body.name;
    addonId = created.body.id;
    await vi.waitFor(
      async () => {
        const addon = await api(`/apps/${app.name}/addons/${addonName}`, { token: user.token });
        expect(addon.body.state).toBe("provisioned");
      },
      { timeout: 60_000, interval: 250 },
    );
    url = (await api(`/apps/${app.name}/config-vars`, { token: user.token })).body.DATABASE_URL;
    await query(
      url,
      `create table orders (id serial primary key, total int not null, note text);
       insert into orders (total, note) select g, 'order ' || g from generate_series(1, 500) g;
       create view big_orders as select * from orders where total > 400;
       create function order_total(i int) returns int language sql as 'select total from orders where id = i';`,
    );
  }, PG_CLIENT_TIMEOUT_MS);

  afterAll(() => destroyApp(user.token, app.name));

  it("pg:backups:capture runs pg_dump on a host as the database's own role; pg:backups lists it and pg:backups:info shows its log", async () => {
    const captured = await cli(["pg:backups:capture"]);
    expect(captured.code, captured.stderr).toBe(0);
    expect(captured.stderr).toContain(`Starting backup of ${addonName}... done`);
    expect(captured.stderr).toMatch(/Backing up DATABASE to b001\.\.\. done/);

    const list = await cli(["pg:backups"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/b001\s.*Completed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000\s.*\d+(\.\d+)?KB\s.*DATABASE/);
    expect(list.stdout).toContain("No restores found");

    const info = await cli(["pg:backups:info", "b001"]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain("=== Backup b001");
    expect(info.stdout).toMatch(/Status:\s+Completed/);
    expect(info.stdout).toMatch(/Type:\s+Manual/);
    // pg_dump's own verbose lines, as Heroku shows them.
    expect(info.stdout).toMatch(/pg_dump: dumping contents of table "public\.orders"/);

    // The dump ran as the tenant: its statements are among the role's own in pg_stat_statements.
    const own = await query<{ query: string }>(url, "select query from dynoplane_stats.pg_stat_statements where query ilike 'LOCK TABLE %orders%'");
    expect(own.length).toBeGreaterThan(0);
    // The app's log says who asked for it.
    expect((await wholeLog(user.token, app.name)).join("\n")).toContain(`Backup b001 of ${addonName} by user ${user.email}`);
  });

  it("pg:backups:download fetches the dump over a signed URL that needs no token header", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "pg-backups-"));
    const file = path.join(dir, "b001.dump");
    const downloaded = await cli(["pg:backups:download", "b001", "--output", file]);
    expect(downloaded.code, downloaded.stderr).toBe(0);
    const dump = readFileSync(file);
    // pg_dump's custom format, with the table's rows in it.
    expect(dump.subarray(0, 5).toString()).toBe("PGDMP");
    expect(dump.length).toBeGreaterThan(1_000);
    // pg_restore reads it: the table, its data, the view and the function are listed.
    const listed = execFileSync(path.join(await pgClientTools(18), "pg_restore"), ["--list", file], { encoding: "utf8" });
    expect(listed).toMatch(/TABLE public orders /);
    expect(listed).toMatch(/TABLE DATA public orders /);
    expect(listed).toMatch(/VIEW public big_orders /);
    expect(listed).toMatch(/FUNCTION public order_total\(integer\)/);

    const printed = await cli(["pg:backups:url", "b001"]);
    expect(printed.code, printed.stderr).toBe(0);
    const signed = printed.stdout.trim();
    expect(signed).toMatch(/^https:\/\/.*\/client\/v11\/backups\/[0-9a-f-]{36}\/dump\?token=/);
    const again = await fetch(signed, { dispatcher: tlsAgent() });
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(dump)).toBe(true);
    // Without its token, or with the token cut short, nothing.
    const bare = await fetch(signed.split("?")[0]!, { dispatcher: tlsAgent() });
    expect(bare.status).toBe(401);
    await bare.arrayBuffer();
    const cut = await fetch(signed.slice(0, -4), { dispatcher: tlsAgent() });
    expect(cut.status).toBe(401);
    await cut.arrayBuffer();
  });

  it("pg:backups:restore puts back a dropped table, its view and its function, and lists the restore", async () => {
    await query(url, "drop table orders cascade; drop function order_total(int); create table scratch (x int)");
    const restored = await cli(["pg:backups:restore", "b001", "DATABASE_URL", "--confirm", app.name]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain(`Starting restore of b001 to ${addonName}... done`);
    expect(restored.stderr).toContain("Restoring... done");

    const [count] = await query<{ n: string; big: string; fn: number }>(
      url,
      "select (select count(*) from orders) as n, (select count(*) from big_orders) as big, order_total(42) as fn",
    );
    expect(count).toEqual({ n: "500", big: "100", fn: 42 });
    // The sequence goes on after the restored rows.
    const [next] = await query<{ id: number }>(url, "insert into orders (total) values (1) returning id");
    expect(next!.id).toBe(501);

    const list = await cli(["pg:backups"]);
    expect(list.code, list.stderr).toBe(0);
    // Nothing of the platform's own (pg_stat_statements in its schema) is in the dump to clash: no warnings.
    expect(list.stdout).toMatch(/r002\s.*Completed .*\s+DATABASE/);
    const info = await cli(["pg:backups:info", "r002"]);
    expect(info.stdout).toMatch(/pg_restore: creating TABLE "public\.orders"/);
    expect(info.stdout).not.toMatch(/error|warning/i);
    expect((await wholeLog(user.token, app.name)).join("\n")).toContain(`Restore of b001 into ${addonName} by user ${user.email}`);
  });

  it("refuses to restore from a URL that is not one of the platform's backups, and changes nothing", async () => {
    const before = await query<{ n: string }>(url, "select count(*) as n from orders");
    const refused = await cli(["pg:backups:restore", "https://127.0.0.1:9/elsewhere.dump", "DATABASE_URL", "--confirm", app.name]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("only from this platform's own backups");
    expect(await query<{ n: string }>(url, "select count(*) as n from orders")).toEqual(before);
    const transfers = await api(`/client/v11/apps/${app.name}/transfers`, { token: user.token });
    expect(transfers.body.map((t: { num: number }) => t.num)).toEqual([1, 2]);
  });

  it("a restore of a damaged archive fails, says why, and leaves the database as it was", async () => {
    // b001's dump, found on the local blob store's disk by its bytes, cut in half.
    const signed = (await cli(["pg:backups:url", "b001"])).stdout.trim();
    const dump = Buffer.from(await (await fetch(signed, { dispatcher: tlsAgent() })).arrayBuffer());
    const stored = readdirSync(path.join(platform().home, "worker", "v3", "r2"), { recursive: true, withFileTypes: true })
      .filter((f) => f.isFile() && f.parentPath.endsWith("blobs"))
      .map((f) => path.join(f.parentPath, f.name))
      .filter((file) => statSync(file).size === dump.length && readFileSync(file).equals(dump));
    expect(stored.length).toBe(1);
    writeFileSync(stored[0]!, dump.subarray(0, Math.floor(dump.length / 2)));
    try {
      await query(url, "delete from orders where id > 10");
      const failed = await cli(["pg:backups:restore", "b001", "DATABASE_URL", "--confirm", app.name]);
      expect(failed.code).not.toBe(0);
      expect(failed.stderr).toContain("An error occurred and the backup did not finish");
      expect(failed.stderr).toMatch(/pg_restore/);
      expect(await query(url, "select count(*)::int as n from orders")).toEqual([{ n: 10 }]);
      // The fresh database it was restoring into is gone.
      expect(await query(url, "select count(*)::int as n from pg_database where datname like '%\\_restore'")).toEqual([{ n: 0 }]);
    } finally {
      writeFileSync(stored[0]!, dump);
    }
  });

  it("pg:backups:delete removes the backup: it leaves the list, and its signed URL downloads nothing any more", async () => {
    const signed = (await cli(["pg:backups:url", "b001"])).stdout.trim();
    const deleted = await cli(["pg:backups:delete", "b001", "--confirm", app.name]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const list = await cli(["pg:backups"]);
    expect(list.stdout).not.toMatch(/b001/);
    expect(list.stdout).toContain("No backups. Capture one with");
    const gone = await fetch(signed, { dispatcher: tlsAgent() });
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
    // Restoring it is refused as not found.
    const restore = await cli(["pg:backups:restore", "b001", "DATABASE_URL", "--confirm", app.name]);
    expect(restore.code).not.toBe(0);
    expect(restore.stderr).toContain("Backup b001 not found");
  });

  it("pg:backups:cancel ends a running backup: the poll ends, pg_dump's session ends, no dump is kept", async () => {
    // A session holding the table makes pg_dump wait on its lock: the backup runs until cancelled.
    let num = 0;
    const holder = new pg.Client({ connectionString: url });
    holder.on("error", () => {});
    await holder.connect();
    try {
      await holder.query("begin; lock table orders in access exclusive mode");
      const started = await api(`/client/v11/databases/${addonId}/backups`, { method: "POST", token: user.token });
      expect(started.status, started.text).toBe(201);
      num = started.body.num;
      const dumping = "select count(*)::int as n from pg_stat_activity where application_name = 'dynoplane pgbackups'";
      await vi.waitFor(async () => expect(await query(url, `${dumping} and wait_event_type = 'Lock'`)).toEqual([{ n: 1 }]), { timeout: 60_000, interval: 250 });

      const cancelled = await cli(["pg:backups:cancel"]);
      expect(cancelled.code, cancelled.stderr).toBe(0);
      expect(cancelled.stderr).toContain(`Cancelling b${String(num).padStart(3, "0")}... done`);
      await vi.waitFor(async () => expect(await query(url, dumping)).toEqual([{ n: 0 }]), { timeout: 30_000, interval: 250 });
    } finally {
      await holder.query("rollback").catch(() => {});
      await holder.end();
    }
    const info = await cli(["pg:backups:info"]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/Status:\s+Canceled/);
    const list = await cli(["pg:backups"]);
    expect(list.stdout).toMatch(new RegExp(`b${String(num).padStart(3, "0")}\\s.*Failed`));
    // Nothing to download.
    const signed = await api(`/client/v11/apps/${app.name}/transfers/${num}/actions/public-url`, { method: "POST", token: user.token });
    expect(signed.status, signed.text).toBe(422);
    // The host's late report changes nothing: still cancelled, still without a dump.
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await api(`/client/v11/apps/${app.name}/transfers/${num}`, { token: user.token });
    expect(after.body).toMatchObject({ succeeded: false, canceled_at: expect.any(String), processed_bytes: 0 });
  });

  it("pg:backups:schedule backs the database up daily at an hour of its time zone, once a day; pg:backups:unschedule stops it", async () => {
    const bad = await cli(["pg:backups:schedule", "DATABASE_URL", "--at", "02:00 Mars/Olympus_Mons"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("Unknown time zone: Mars/Olympus_Mons");
    expect((await cli(["pg:backups:schedules"])).stderr).toContain(`No backup schedules found on ${app.name}`);

    const made = await cli(["pg:backups:schedule", "DATABASE_URL", "--at", "02:00 Europe/Istanbul"]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stderr).toContain(`Scheduling automatic daily backups of ${addonName} at 02:00 Europe/Istanbul... done`);
    const listed = await cli(["pg:backups:schedules"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain("DATABASE_URL: daily at 2:00 Europe/Istanbul");

    // As if made on an earlier day for midnight: the next scheduled run takes today's backup.
    await (await db()).update(pgBackupSchedules).set({ hour: 0, lastDay: "2000-01-01" }).where(eq(pgBackupSchedules.addonId, addonId));
    const scheduledOnes = async () =>
      (await api(`/client/v11/apps/${app.name}/transfers`, { token: user.token })).body.filter((t: { schedule: unknown }) => t.schedule);
    expect(await scheduledOnes()).toEqual([]);
    await fireCron();
    const taken = await vi.waitFor(
      async () => {
        const [t] = await scheduledOnes();
        expect(t?.finished_at).toBeTruthy();
        return t;
      },
      { timeout: 60_000, interval: 500 },
    );
    expect(taken).toMatchObject({ succeeded: true, from_type: "pg_dump", to_type: "gof3r" });
    const name = `a${String(taken.num).padStart(3, "0")}`;
    const list = await cli(["pg:backups"]);
    expect(list.stdout).toMatch(new RegExp(`${name}\\s.*Completed`));
    expect((await cli(["pg:backups:info", name])).stdout).toMatch(/Type:\s+Scheduled/);
    // Another run the same day takes none.
    await fireCron();
    expect((await scheduledOnes()).length).toBe(1);

    const removed = await cli(["pg:backups:unschedule", "DATABASE_URL"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stderr).toContain("Unscheduling DATABASE_URL daily backups... done");
    expect((await cli(["pg:backups:schedules"])).stderr).toContain(`No backup schedules found on ${app.name}`);
    // Its backup stays.
    expect((await cli(["pg:backups"])).stdout).toContain(name);
  });

  it("keeps the plan's number of manual backups: a new one past it expires the oldest, whose download stops", async () => {
    const capture = async () => {
      const started = await api(`/client/v11/databases/${addonId}/backups`, { method: "POST", token: user.token });
      expect(started.status, started.text).toBe(201);
      return vi.waitFor(
        async () => {
          const t = (await api(`/client/v11/apps/${app.name}/transfers/${started.body.uuid}?verbose=true`, { token: user.token })).body;
          expect(t.finished_at).toBeTruthy();
          // A failed one says why in its log's last lines.
          expect(t.succeeded, JSON.stringify(t.logs.slice(-4))).toBe(true);
          return t.num as number;
        },
        { timeout: 60_000, interval: 300 },
      );
    };
    const manual = async () =>
      (await api(`/client/v11/apps/${app.name}/transfers`, { token: user.token })).body
        .filter((t: { to_type: string; schedule: unknown; succeeded: boolean }) => t.to_type === "gof3r" && !t.schedule && t.succeeded)
        .map((t: { num: number }) => t.num);
    const first = await capture();
    const firstUrl = (await api(`/client/v11/apps/${app.name}/transfers/${first}/actions/public-url`, { method: "POST", token: user.token })).body.url;
    const nums = [first];
    while ((await manual()).length < 5) nums.push(await capture());
    expect(await manual()).toContain(first);
    // While a restore reads the oldest, a sixth leaves it be.
    const [firstRow] = await (await db())
      .select()
      .from(pgTransfers)
      .where(and(eq(pgTransfers.appId, app.id), eq(pgTransfers.num, first)));
    const [reading] = await (await db())
      .insert(pgTransfers)
      .values({ appId: app.id, num: 9_000, kind: "restore", backupId: firstRow!.id, fromName: "b", toName: "DATABASE" })
      .returning();
    await capture();
    expect(await manual()).toContain(first);
    await (await db()).update(pgTransfers).set({ finishedAt: new Date() }).where(eq(pgTransfers.id, reading!.id));
    // The next one: the oldest goes, with its dump.
    const sixth = await capture();
    const kept = await manual();
    expect(kept.length).toBe(5);
    expect(kept).not.toContain(first);
    expect(kept).toContain(sixth);
    const gone = await fetch(firstUrl, { dispatcher: tlsAgent() });
    expect(gone.status).toBe(404);
    await gone.arrayBuffer();
    // The scheduled backup is counted apart and stays.
    expect((await api(`/client/v11/apps/${app.name}/transfers`, { token: user.token })).body.some((t: { schedule: unknown }) => t.schedule)).toBe(true);
  });

  it("a restore's fresh database takes the add-on's place only once the restore succeeded; a failed one leaves the add-on's as it was", async () => {
    const own = new URL(url);
    const resource = decodeURIComponent(own.username);
    const creds = { host: own.hostname, port: Number(own.port), database: resource, user: resource, password: decodeURIComponent(own.password) };
    const provider = new AdminUrlProvider(platform().addonDatabaseUrl, own.host);
    await query(url, "create table kept (v text); insert into kept values ('before')");

    // A failed restore: what it wrote is dropped with its database; the add-on's is untouched.
    const failed = await provider.prepareRestore(resource, PLANS[0]!, creds);
    expect(failed.database).toBe(`${resource}_restore`);
    await query(databaseUrl(failed), "create table half_done (x int)");
    // The add-on's role cannot reach it meanwhile (the server admits a role to its own database alone).
    await expect(query(databaseUrl({ ...creds, database: failed.database }), "select 1")).rejects.toThrow(/no pg_hba.conf entry/);
    await provider.discardRestore(resource);
    expect(await query(url, "select v from kept")).toEqual([{ v: "before" }]);
    await expect(query(databaseUrl(failed), "select 1")).rejects.toThrow();

    // A restore that succeeded: the app's sessions end, and the fresh database is the add-on's, all of it its role's.
    const done = await provider.prepareRestore(resource, PLANS[0]!, creds);
    await query(databaseUrl(done), "create table restored (v text); insert into restored values ('from the backup')");
    const app = new pg.Client({ connectionString: url });
    let ended: Error | undefined;
    app.on("error", (err) => (ended = err));
    await app.connect();
    await provider.finishRestore(resource);
    await provider.dropReplaced(resource);
    const left = await query<{ datname: string }>(platform().addonDatabaseUrl, `select datname from pg_database where datname like '${resource}\\_%'`);
    expect(left).toEqual([]);
    await vi.waitFor(() => expect(ended).toBeDefined(), { timeout: 5_000 });
    await app.end().catch(() => {});
    expect(await query(url, "select v from restored")).toEqual([{ v: "from the backup" }]);
    await expect(query(url, "select v from kept")).rejects.toThrow(/does not exist/);
    expect(await query(url, "select tableowner from pg_tables where tablename = 'restored'")).toEqual([{ tableowner: resource }]);
    await query(url, "insert into restored values ('written after'); drop table restored");
    // The restore's role is gone with its work done.
    await expect(query(databaseUrl(done), "select 1")).rejects.toThrow();
  });
});
