import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { randomBytes } from "node:crypto";
import { addons, pgTransfers } from "../../src/db/schema/index.ts";
import { api, fireCron } from "../support/api.ts";
import { query } from "../support/sql.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { ensurePgClient, PG_CLIENT_TIMEOUT_MS } from "../support/pg-client.ts";
import { wholeLog } from "../support/log-app.ts";
import { destroyApp } from "../support/slugs.ts";

// Forks and copies with the unmodified heroku CLI 11.10.0: `addons:create -- --fork
// DATABASE_URL` makes a new database with another's data (a host copies it with pg_dump
// and pg_restore, as the two databases' own roles), and `pg:copy` replaces a database's
// data with another's, through a fresh database that takes its place once the copy is done.

afterAll(closeDb);

describe("heroku addons:create --fork and pg:copy", { timeout: 240_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  let sourceName: string;
  const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 200_000 });
  /** `addons:create PLAN --app APP [flags] -- CONFIG`: what follows `--` is the add-on's configuration. */
  const create = (flags: string[], config: string[]) =>
    heroku(["addons:create", "heroku-postgresql:essential-0", "--app", app.name, ...flags, "--", ...config], {
      home,
      env: { HEROKU_API_KEY: user.token },
      timeoutMs: 200_000,
    });
  const config = async () => (await api(`/apps/${app.name}/config-vars`, { token: user.token })).body as Record<string, string>;

  beforeAll(async () => {
    await ensureHerokuCli();
    await ensurePgClient();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    const created = await api(`/apps/${app.name}/addons`, { method: "POST", token: user.token, body: { plan: "heroku-postgresql:essential-0" } });
    expect(created.status, created.text).toBe(201);
    sourceName = created.body.name;
    await vi.waitFor(async () => expect((await api(`/apps/${app.name}/addons/${sourceName}`, { token: user.token })).body.state).toBe("provisioned"), {
      timeout: 60_000,
      interval: 250,
    });
    await query(
      (await config()).DATABASE_URL!,
      "create table items (id serial primary key, label text); insert into items (label) select 'item ' || g from generate_series(1, 300) g",
    );
  }, PG_CLIENT_TIMEOUT_MS);

  afterAll(() => destroyApp(user.token, app.name));

  it("addons:create -- --fork DATABASE_URL makes a database with the source's data, which pg:info says it was forked from", async () => {
    const forked = await create(["--wait"], ["--fork", "DATABASE_URL"]);
    expect(forked.code, forked.stderr).toBe(0);
    const vars = await config();
    const forkVar = Object.keys(vars).find((k) => /^HEROKU_POSTGRESQL_[A-Z]+_URL$/.test(k) && vars[k] !== vars.DATABASE_URL)!;
    expect(forkVar).toBeDefined();
    expect(await query(vars[forkVar]!, "select count(*)::int as n, max(label) as last from items")).toEqual([{ n: 300, last: "item 99" }]);
    // Its own database and role: a write there leaves the source alone, and it owns what it holds.
    await query(vars[forkVar]!, "delete from items where id > 100");
    expect(await query(vars.DATABASE_URL!, "select count(*)::int as n from items")).toEqual([{ n: 300 }]);
    const [owner] = await query<{ tableowner: string }>(vars[forkVar]!, "select tableowner from pg_tables where tablename = 'items'");
    expect(owner!.tableowner).toBe(decodeURIComponent(new URL(vars[forkVar]!).username));

    const info = await cli(["pg:info", forkVar.replace(/_URL$/, "")]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(new RegExp(`Forked From:\\s+${sourceName}`));
    // The copy that filled it is listed.
    const list = await cli(["pg:backups"]);
    expect(list.stdout).toMatch(/=== Copies[\s\S]*c001\s.*Completed/);
  });

  it("pg:copy replaces a database's data with another's; the app's log says who", async () => {
    const vars = await config();
    const forkVar = Object.keys(vars).find((k) => /^HEROKU_POSTGRESQL_[A-Z]+_URL$/.test(k) && vars[k] !== vars.DATABASE_URL)!;
    const color = forkVar.replace(/^HEROKU_POSTGRESQL_/, "").replace(/_URL$/, "");
    await query(vars.DATABASE_URL!, "insert into items (label) values ('added to the source')");
    const copied = await cli(["pg:copy", "DATABASE_URL", forkVar, "--confirm", color]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.stderr).toContain("Copying... done");
    expect(await query(vars[forkVar]!, "select count(*)::int as n from items")).toEqual([{ n: 301 }]);
    // The target's URL is unchanged: the apps' DATABASE_URLs stay valid.
    expect((await config())[forkVar]).toBe(vars[forkVar]);
    expect((await cli(["pg:backups"])).stdout).toMatch(/c002\s.*Completed/);
    expect((await wholeLog(user.token, app.name)).join("\n")).toMatch(/Copy c002 of postgresql-[a-z]+-\d+ into postgresql-[a-z]+-\d+ by user /);
  });

  it("refuses a copy from a URL that is not one of the platform's databases, a copy onto itself, and a fork of nothing", async () => {
    const vars = await config();
    const forkVar = Object.keys(vars).find((k) => /^HEROKU_POSTGRESQL_[A-Z]+_URL$/.test(k) && vars[k] !== vars.DATABASE_URL)!;
    const before = await query(vars[forkVar]!, "select count(*)::int as n from items");
    const addon = (await api(`/apps/${app.name}/addons`, { token: user.token })).body.find((a: { config_vars: string[] }) => a.config_vars.includes(forkVar));
    for (const from_url of ["postgres://someone:secret@127.0.0.1:9/elsewhere", `${vars.DATABASE_URL}x`]) {
      const res = await api(`/client/v11/databases/${addon.id}/transfers`, { method: "POST", token: user.token, body: { from_url, to_url: vars[forkVar] } });
      expect(res.status, res.text).toBe(422);
      expect(res.body.message).toContain("only between this platform's databases");
    }
    const self = await cli(["pg:copy", forkVar, forkVar, "--confirm", "x"]);
    expect(self.code).not.toBe(0);
    expect(self.stderr).toContain("Cannot copy database onto itself");
    expect(await query(vars[forkVar]!, "select count(*)::int as n from items")).toEqual(before);
    const nothing = await create([], ["--fork", "NO_SUCH_DATABASE"]);
    expect(nothing.code).not.toBe(0);
    expect(nothing.stderr).toContain("Couldn't find that add-on: NO_SUCH_DATABASE");
    const rollback = await create([], ["--rollback", "DATABASE_URL"]);
    expect(rollback.code).not.toBe(0);
    expect(rollback.stderr).toContain('heroku-postgresql takes no provisioning option "rollback"');
  });

  it("a fork whose host never reports back fails, with the reason, on the scheduled run", async () => {
    // As a host that died in the middle of a fork's copy an hour and more ago leaves it.
    const database = await db();
    const [addon] = await database
      .insert(addons)
      .values({
        appId: app.id,
        name: `postgresql-stalled-${Date.now() % 100000}`,
        service: "heroku-postgresql",
        plan: "heroku-postgresql:essential-0",
        color: "TEAL",
        state: "provisioning",
        providerId: `addon_${randomBytes(10).toString("hex")}`,
      })
      .returning();
    const [transfer] = await database
      .insert(pgTransfers)
      .values({
        appId: app.id,
        num: 900,
        kind: "copy",
        addonId: addon!.id,
        forkAddonId: addon!.id,
        fromName: "DATABASE",
        toName: "HEROKU_POSTGRESQL_TEAL",
        startedAt: new Date(Date.now() - 2 * 3600_000),
        createdAt: new Date(Date.now() - 2 * 3600_000),
      })
      .returning();
    await fireCron();
    const t = await api(`/client/v11/apps/${app.name}/transfers/${transfer!.id}?verbose=true`, { token: user.token });
    expect(t.body).toMatchObject({ succeeded: false, finished_at: expect.any(String) });
    expect(t.body.logs.at(-1).message).toContain("did not report back in time");
    const info = await api(`/apps/${app.name}/addons/${addon!.name}`, { token: user.token });
    expect(info.body.state).toBe("deprovisioned");
    expect(info.body.provision_message).toContain("its data could not be copied (The transfer did not report back in time");
  });
});
