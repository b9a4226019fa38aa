import { eq } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enforceAddonStorage } from "../../src/cron/enforce-addon-storage.ts";
import type { Bindings } from "../../src/env.ts";
import { addons } from "../../src/db/schema/index.ts";
import { AdminUrlProvider } from "../../src/services/addons/providers/postgres.ts";
import { fetch } from "undici";
import { api, platform, tlsAgent } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { herokuSchema } from "../support/heroku-schema.ts";
import { ensurePgClient, PG_CLIENT_TIMEOUT_MS } from "../support/pg-client.ts";
import { destroyApp, waitFor } from "../support/slugs.ts";

afterAll(closeDb);

/** Runs one query as the holder of `url` would; rejects with the server's error. */
async function query(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end().catch(() => {});
  }
}

const config = async (token: string, app: string) => (await api(`/apps/${app}/config-vars`, { token })).body as Record<string, string>;

/** Creates a Postgres add-on and waits until it is provisioned; returns its JSON as then listed. */
async function provision(owner: TestAccount, app: string, body: Record<string, unknown> = {}) {
  const res = await api(`/apps/${app}/addons`, { method: "POST", token: owner.token, body: { plan: { name: "heroku-postgresql:essential-0" }, ...body } });
  expect(res.status, res.text).toBe(201);
  expect(res.body.state).toBe("provisioning");
  return waitFor(
    `${res.body.name} provisioned`,
    async () => {
      const info = await api(`/apps/${app}/addons/${res.body.name}`, { token: owner.token });
      return info.body.state === "provisioned" ? info.body : undefined;
    },
    20_000,
    100,
  );
}

describe("the add-on catalog", () => {
  it("lists heroku-postgresql and its plans in Heroku's shapes, the free tier first and default", async () => {
    const owner = await makeAccount();
    const services = await api("/addon-services", { token: owner.token });
    expect(services.status).toBe(200);
    expect(herokuSchema().validateResponse("GET", "/addon-services", services.body)).toEqual([]);
    expect(services.body.map((s: { name: string }) => s.name)).toEqual(["heroku-postgresql"]);
    const byName = await api("/addon-services/heroku-postgresql", { token: owner.token });
    expect(byName.body.id).toBe(services.body[0].id);
    const plans = await api(`/addon-services/${byName.body.id}/plans`, { token: owner.token });
    expect(herokuSchema().validateResponse("GET", "/addon-services/x/plans", plans.body)).toEqual([]);
    expect(plans.body.map((p: { name: string; default: boolean }) => [p.name, p.default])).toEqual([
      ["heroku-postgresql:essential-0", true],
      ["heroku-postgresql:essential-1", false],
      ["heroku-postgresql:essential-2", false],
    ]);
    expect(plans.body.map((p: { connection_limit: number }) => p.connection_limit)).toEqual([20, 20, 40]);
    const alias = await api("/addon-services/heroku-postgresql/plans/hobby-dev", { token: owner.token });
    expect(alias.body.name).toBe("heroku-postgresql:essential-0");
    const plan = await api(`/plans/${plans.body[2].id}`, { token: owner.token });
    expect(plan.body.name).toBe("heroku-postgresql:essential-2");
    expect((await api("/addon-services/heroku-redis", { token: owner.token })).status).toBe(404);
  });
});

describe("heroku-postgresql add-ons", () => {
  it("provisions a real, isolated database: DATABASE_URL and the colour name are set, with a release", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const other = await makeApp(owner);
    try {
      const addon = await provision(owner, app.name);
      expect(herokuSchema().validateResponse("GET", `/apps/${app.name}/addons/x`, addon)).toEqual([]);
      expect(addon.name).toMatch(/^postgresql-[a-z]+-\d{5}$/);
      expect(addon.config_vars).toEqual(["DATABASE_URL", "HEROKU_POSTGRESQL_RED_URL"]);
      const vars = await config(owner.token, app.name);
      const url = vars.DATABASE_URL!;
      // At the platform's services address, which dynos reach through their agent.
      expect(url).toMatch(/^postgres:\/\/addon_[a-z0-9]+:[A-Za-z0-9_-]{32}@10\.213\.255\.254:\d+\/addon_[a-z0-9]+$/);
      expect(vars.HEROKU_POSTGRESQL_RED_URL).toBe(url);
      const releases = await api(`/apps/${app.name}/releases`, { token: owner.token });
      expect(releases.body.at(-1).description).toBe(`Attach DATABASE (@ref:${addon.name})`);

      // The app's role owns its database and nothing more.
      await query(url, "create table users (id serial primary key, name text)");
      await query(url, "insert into users (name) values ('ada')");
      expect((await query(url, "select name from users")).rows).toEqual([{ name: "ada" }]);
      await expect(query(url, "create role intruder")).rejects.toThrow(/permission denied/);
      await expect(query(url, "create database another")).rejects.toThrow(/permission denied/);
      const postgresDb = url.replace(/\/[^/]+$/, "/postgres");
      await expect(query(postgresDb, "select 1")).rejects.toThrow(/no pg_hba.conf entry|permission denied|not have CONNECT/);

      // Another app's database: its own role, and neither can reach the other's.
      const second = await provision(owner, other.name);
      const otherUrl = (await config(owner.token, other.name)).DATABASE_URL!;
      expect(second.config_vars).toEqual(["DATABASE_URL", "HEROKU_POSTGRESQL_RED_URL"]);
      const crossed = url.replace(/\/[^/]+$/, `/${new URL(otherUrl).pathname.slice(1)}`);
      await expect(query(crossed, "select 1")).rejects.toThrow(/no pg_hba.conf entry|permission denied|not have CONNECT/);
      // The control plane's database is on another server altogether.
      const control = new URL(platform().databaseUrl);
      const aimed = new URL(url);
      aimed.hostname = control.hostname;
      aimed.port = control.port;
      aimed.pathname = control.pathname;
      await expect(query(aimed.toString(), "select 1")).rejects.toThrow(/password authentication failed|no pg_hba|does not exist/);
    } finally {
      await destroyApp(owner.token, app.name);
      await destroyApp(owner.token, other.name);
    }
  });

  it("attaches a second database under another name, which sets only its own config var", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      await provision(owner, app.name);
      const extra = await provision(owner, app.name, { attachment: { name: "EXTRA" }, plan: { name: "heroku-postgresql:hobby-dev" } });
      expect(extra.plan.name).toBe("heroku-postgresql:essential-0");
      expect(extra.config_vars).toEqual(["EXTRA_URL"]);
      const vars = await config(owner.token, app.name);
      expect(Object.keys(vars).sort()).toEqual(["DATABASE_URL", "EXTRA_URL", "HEROKU_POSTGRESQL_RED_URL"]);
      expect(vars.EXTRA_URL).not.toBe(vars.DATABASE_URL);
      const listed = await api(`/apps/${app.name}/addons`, { token: owner.token });
      expect(listed.body).toHaveLength(2);
      const attachments = await api(`/apps/${app.name}/addon-attachments`, { token: owner.token });
      expect(attachments.body.map((a: { name: string }) => a.name).sort()).toEqual(["DATABASE", "EXTRA"]);
      const resolved = await api("/actions/addon-attachments/resolve", {
        method: "POST",
        token: owner.token,
        headers: { "Accept-Inclusion": "addon:plan,config_vars" },
        body: { addon_attachment: "DATABASE_URL", app: app.name },
      });
      expect(resolved.status, resolved.text).toBe(200);
      expect(resolved.body).toMatchObject([
        { name: "DATABASE", addon: { plan: { name: "heroku-postgresql:essential-0" } }, config_vars: ["DATABASE_URL", "HEROKU_POSTGRESQL_RED_URL"] },
      ]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("rotates the credentials: the old URL stops working at once, every attachment gets the new one, with a release", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const addon = await provision(owner, app.name);
      const before = (await config(owner.token, app.name)).DATABASE_URL!;
      await query(before, "create table kept (v int); insert into kept values (42)");
      const holder = new pg.Client({ connectionString: before });
      holder.on("error", () => {});
      await holder.connect();
      const basic = `Basic ${Buffer.from(`:${owner.token}`).toString("base64")}`;
      const res = await api(`/postgres/v0/databases/${addon.name}/credentials/default/credentials_rotation`, {
        method: "POST",
        headers: { Authorization: basic },
        body: {},
      });
      expect(res.status, res.text).toBe(200);
      const after = await config(owner.token, app.name);
      expect(after.DATABASE_URL).not.toBe(before);
      expect(after.HEROKU_POSTGRESQL_RED_URL).toBe(after.DATABASE_URL);
      await expect(query(before, "select 1")).rejects.toThrow(/password authentication failed/);
      await expect(holder.query("select 1")).rejects.toThrow();
      await holder.end().catch(() => {});
      expect((await query(after.DATABASE_URL!, "select v from kept")).rows).toEqual([{ v: 42 }]);
      const releases = await api(`/apps/${app.name}/releases`, { token: owner.token });
      expect(releases.body.at(-1).description).toBe("Update DATABASE by heroku-postgresql");
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("destroys the database and its role, even with live connections, and takes its config vars away", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const addon = await provision(owner, app.name);
      const url = (await config(owner.token, app.name)).DATABASE_URL!;
      const live = new pg.Client({ connectionString: url });
      live.on("error", () => {});
      await live.connect();
      const res = await api(`/apps/${app.id}/addons/${addon.id}`, { method: "DELETE", token: owner.token, body: { force: false } });
      expect(res.status, res.text).toBe(200);
      expect(res.body.state).toBe("deprovisioned");
      expect(await config(owner.token, app.name)).toEqual({});
      await expect(query(url, "select 1")).rejects.toThrow(/password authentication failed|does not exist/);
      const admin = platform().addonDatabaseUrl;
      const role = new URL(url).username;
      expect((await query(admin, `select 1 from pg_roles where rolname = '${role}'`)).rowCount).toBe(0);
      expect((await query(admin, `select 1 from pg_database where datname = '${role}'`)).rowCount).toBe(0);
      expect(await (await db()).select().from(addons).where(eq(addons.id, addon.id))).toEqual([]);
      await live.end().catch(() => {});
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it.each<[string, Record<string, unknown>, number, RegExp]>([
    ["an unknown service", { plan: { name: "heroku-redis:mini" } }, 404, /add-on service/],
    ["an unknown plan", { plan: { name: "heroku-postgresql:essential-9" } }, 404, /plan essential-9/],
    ["a plan without its service", { plan: { name: "essential-0" } }, 404, /service:plan/],
    ["an attachment name that is no config var prefix", { plan: "heroku-postgresql", attachment: { name: "9-LIVES" } }, 422, /Attachment name/],
    ["a provisioning option postgres does not take", { plan: "heroku-postgresql", config: { version: "9" } }, 422, /no provisioning option/],
  ])("refuses %s with {id, message} and provisions nothing", async (_label, body, status, message) => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const res = await api(`/apps/${app.name}/addons`, { method: "POST", token: owner.token, body });
      expect(res.status, res.text).toBe(status);
      expect(res.body).toMatchObject({ id: expect.any(String), message: expect.stringMatching(message) });
      expect(await (await db()).select().from(addons).where(eq(addons.appId, app.id))).toEqual([]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("refuses a second attachment of the same name, and another account's destroy, attach and rotation", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    const theirs = await makeApp(stranger);
    try {
      const addon = await provision(owner, app.name);
      const twice = await api(`/apps/${app.name}/addons`, {
        method: "POST",
        token: owner.token,
        body: { plan: "heroku-postgresql", attachment: { name: "DATABASE" } },
      });
      expect(twice.status).toBe(422);
      expect(twice.body.message).toMatch(/already has an attachment named DATABASE/);
      const destroy = await api(`/apps/${app.name}/addons/${addon.name}`, { method: "DELETE", token: stranger.token });
      expect([403, 404]).toContain(destroy.status);
      const attach = await api("/addon-attachments", { method: "POST", token: stranger.token, body: { addon: addon.name, app: theirs.name } });
      expect(attach.status).toBe(404);
      const basic = `Basic ${Buffer.from(`:${stranger.token}`).toString("base64")}`;
      const rotate = await api(`/postgres/v0/databases/${addon.name}/credentials_rotation`, { method: "POST", headers: { Authorization: basic }, body: {} });
      expect(rotate.status).toBe(404);
      expect((await api(`/apps/${app.name}/addons`, { token: owner.token })).body).toHaveLength(1);
      expect(await config(stranger.token, theirs.name)).toEqual({});
    } finally {
      await destroyApp(owner.token, app.name);
      await destroyApp(stranger.token, theirs.name);
    }
  });

  it("answers the data API only to the database's owner: no credentials 401, another account's 404", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    try {
      const addon = await provision(owner, app.name);
      const paths: Array<[string, string]> = [
        ["GET", `/client/v11/databases/${addon.id}`],
        ["GET", `/postgres/v0/databases/${addon.id}/credentials`],
        ["GET", `/postgres/v0/databases/${addon.name}/credentials/default`],
        ["POST", `/postgres/v0/databases/${addon.name}/credentials/default/credentials_rotation`],
        ["POST", `/postgres/v0/databases/${addon.name}/credentials_rotation`],
      ];
      const before = (await config(owner.token, app.name)).DATABASE_URL;
      for (const [method, path] of paths) {
        const anonymous = await api(path, { method, body: method === "POST" ? {} : undefined });
        expect(anonymous.status, `${method} ${path}`).toBe(401);
        const foreign = await api(path, { method, token: stranger.token, body: method === "POST" ? {} : undefined });
        expect(foreign.status, `${method} ${path}`).toBe(404);
        expect(foreign.body).toMatchObject({ id: "not_found", message: expect.any(String) });
      }
      expect((await config(owner.token, app.name)).DATABASE_URL).toBe(before);
      const info = await api(`/client/v11/databases/${addon.id}`, { token: owner.token });
      expect(info.status, info.text).toBe(200);
      expect(info.body.resource_url).toBe(before);
      const named = Object.fromEntries(info.body.info.map((i: { name: string; values: string[] }) => [i.name, i.values[0]]));
      expect(named).toMatchObject({ Plan: "Essential 0", Status: "Available", Connections: "0/20", Tables: "0" });
      const creds = await api(`/postgres/v0/databases/${addon.name}/credentials/default`, { token: owner.token });
      const url = new URL(before!);
      expect(creds.body).toMatchObject({ database: url.pathname.slice(1), host: url.hostname, port: Number(url.port) });
      expect(creds.body.credentials).toEqual([{ user: url.username, password: url.password, state: "active", connections: 0 }]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});

describe("Heroku Postgres on the dashboard", () => {
  // The Durability section's backups run the host's pg_dump and pg_restore.
  beforeAll(ensurePgClient, PG_CLIENT_TIMEOUT_MS);

  it("provisions from Resources, shows the database's page with its credentials on request, rotates and removes (CSRF-checked, owner only)", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    const address = () => `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    try {
      const browser = new DashboardClient({ "CF-Connecting-IP": address() });
      expect((await browser.signIn(owner.email, owner.password)).status).toBe(303);
      const resources = await browser.get(`/dashboard/apps/${app.name}/resources`);
      expect(resources.text).toContain("Provision add-on");
      expect((await browser.post(`/dashboard/apps/${app.name}/addons`, { plan: "heroku-postgresql:essential-0" }, { csrf: null })).status).toBe(403);
      expect(await (await db()).select().from(addons).where(eq(addons.appId, app.id))).toEqual([]);
      const provisioned = await browser.post(`/dashboard/apps/${app.name}/addons`, { plan: "heroku-postgresql:essential-0" });
      expect(provisioned.status).toBe(303);
      const [row] = await (await db()).select().from(addons).where(eq(addons.appId, app.id));
      await waitFor("provisioned", async () => (await api(`/addons/${row!.name}`, { token: owner.token })).body.state === "provisioned", 20_000, 100);
      const listed = await browser.get(`/dashboard/apps/${app.name}/resources`);
      expect(listed.text).toContain(row!.name);
      expect(listed.text).toContain("Essential 0");

      const url = (await config(owner.token, app.name)).DATABASE_URL!;
      const dataPage = await browser.get(`/dashboard/apps/${app.name}/addons/${row!.name}`);
      expect(dataPage.status).toBe(200);
      expect(dataPage.text).toContain("<summary>View credentials</summary>");
      expect(dataPage.text).toContain(new URL(url).password);
      expect(dataPage.text).toMatch(/Tables<\/dt><dd>0<\/dd>/);

      const outsider = new DashboardClient({ "CF-Connecting-IP": address() });
      expect((await outsider.signIn(stranger.email, stranger.password)).status).toBe(303);
      const theirs = await outsider.get(`/dashboard/apps/${app.name}/addons/${row!.name}`);
      expect(theirs.status).toBe(403);
      expect(theirs.text).not.toContain(new URL(url).password);

      const wrong = await browser.post(`/dashboard/apps/${app.name}/addons/${row!.name}/rotate`, { confirm: "not-the-app" });
      expect(wrong.status).toBe(303);
      expect((await config(owner.token, app.name)).DATABASE_URL).toBe(url);
      const rotated = await browser.post(`/dashboard/apps/${app.name}/addons/${row!.name}/rotate`, { confirm: app.name });
      expect(rotated.status).toBe(303);
      const newUrl = (await config(owner.token, app.name)).DATABASE_URL!;
      expect(newUrl).not.toBe(url);
      await expect(query(url, "select 1")).rejects.toThrow(/password authentication failed/);

      const resourcesNow = await browser.get(`/dashboard/apps/${app.name}/resources`);
      expect(resourcesNow.text).toContain(`Remove ${row!.name}`);
      const notConfirmed = await browser.post(`/dashboard/apps/${app.name}/addons/${row!.name}/destroy`, { confirm: "nope" });
      expect(notConfirmed.status).toBe(303);
      expect((await config(owner.token, app.name)).DATABASE_URL).toBe(newUrl);
      const removed = await browser.post(`/dashboard/apps/${app.name}/addons/${row!.name}/destroy`, { confirm: app.name });
      expect(removed.status).toBe(303);
      expect(await config(owner.token, app.name)).toEqual({});
      await expect(query(newUrl, "select 1")).rejects.toThrow(/password authentication failed|does not exist/);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});

describe("the storage limit of a Postgres add-on", () => {
  it("locks writes of a database over its limit (reads, DELETE and TRUNCATE still work) and lifts the lock once it is back under", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const addon = await provision(owner, app.name);
      const url = (await config(owner.token, app.name)).DATABASE_URL!;
      const provider = new AdminUrlProvider(platform().addonDatabaseUrl, new URL(url).host);
      const said: string[] = [];
      const run = async () =>
        enforceAddonStorage(await db(), {} as Bindings, {
          provider,
          // A limit a test can cross: an empty database is about 8 MB.
          limitBytes: (a) => (a.id === addon.id ? 12 * 1024 * 1024 : Number.MAX_SAFE_INTEGER),
          log: async (appId, text) => void (appId === app.id && said.push(text)),
        });
      await query(url, "create table big (v text)");
      expect((await run()).locked).toBe(0);
      // About 9 MB of incompressible rows, each under the size that would be compressed.
      await query(url, "insert into big select string_agg(md5(random()::text), '') from generate_series(1, 288000) g group by g % 9000");
      const locked = await run();
      expect(locked.locked).toBe(1);
      expect(said.at(-1)).toMatch(new RegExp(`^${addon.name} is over its plan's storage \\(\\d+\\.\\d MB of 12\\.0 MB\\): writes are refused`));
      await expect(query(url, "insert into big values ('more')")).rejects.toThrow(/permission denied/);
      await expect(query(url, "create table other (v int)")).rejects.toThrow(/permission denied/);
      await expect(query(url, "set default_transaction_read_only = off; insert into big values ('sneaky')")).rejects.toThrow(/permission denied/);
      expect(Number((await query(url, "select count(*) as n from big")).rows[0].n)).toBe(9000);
      expect((await run()).locked).toBe(0); // still over: nothing changes
      await query(url, "truncate big");
      const unlocked = await run();
      expect(unlocked.unlocked).toBe(1);
      expect(said.at(-1)).toMatch(/is back under its plan's storage .*: writes are allowed again$/);
      await query(url, "insert into big values ('fits again'); create table other (v int)");
      // Destroyed while locked or not, nothing of it stays on the server.
      await query(url, "insert into big select string_agg(md5(random()::text), '') from generate_series(1, 288000) g group by g % 9000");
      expect((await run()).locked).toBe(1);
      expect((await api(`/apps/${app.name}/addons/${addon.name}`, { method: "DELETE", token: owner.token })).status).toBe(200);
      const role = new URL(url).username;
      const left = await query(platform().addonDatabaseUrl, `select rolname from pg_roles where rolname like '${role}%'`);
      expect(left.rows).toEqual([]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("a database's Durability section captures a backup, downloads it, restores it when the app's name is typed, and schedules daily ones", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const browser = new DashboardClient({ "CF-Connecting-IP": `203.0.113.${Math.floor(Math.random() * 250) + 1}` });
      expect((await browser.signIn(owner.email, owner.password)).status).toBe(303);
      const created = await api(`/apps/${app.name}/addons`, { method: "POST", token: owner.token, body: { plan: "heroku-postgresql:essential-0" } });
      const name = created.body.name as string;
      await waitFor("provisioned", async () => (await api(`/addons/${name}`, { token: owner.token })).body.state === "provisioned", 20_000, 100);
      const url = (await config(owner.token, app.name)).DATABASE_URL!;
      await query(url, "create table notes (v text); insert into notes values ('first')");
      const page = `/dashboard/apps/${app.name}/addons/${name}`;
      expect((await browser.get(page)).text).toContain("No backups yet.");

      const captured = await browser.post(`${page}/backups`, {});
      expect(captured.status).toBe(303);
      await waitFor("b001 completed", async () => /b001<\/td><td>.*?<\/td><td>Completed<\/td>/.test((await browser.get(page)).text), 60_000, 200);
      const shown = (await browser.get(page)).text;
      expect(shown).toContain(`href="${page}/backups/1/download"`);
      // The download link sends the browser to the backup's signed URL: the archive itself.
      const download = await browser.get(`${page}/backups/1/download`);
      expect(download.status).toBe(303);
      expect(download.location).toMatch(/^\/client\/v11\/backups\/[0-9a-f-]{36}\/dump\?token=/);
      const dump = await fetch(platform().apiUrl + download.location, { dispatcher: tlsAgent() });
      expect(
        Buffer.from(await dump.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe("PGDMP");

      await query(url, "update notes set v = 'changed'");
      // Not confirmed: nothing is restored.
      expect((await browser.post(`${page}/backups/1/restore`, { confirm: "not-the-app" })).status).toBe(303);
      expect((await browser.get(page)).text).toContain(`The name you typed does not match ${app.name}; nothing was restored.`);
      expect((await api(`/client/v11/apps/${app.name}/transfers`, { token: owner.token })).body.length).toBe(1);
      expect((await browser.post(`${page}/backups/1/restore`, { confirm: app.name })).status).toBe(303);
      await waitFor("the restore", async () => (await query(url, "select v from notes").catch(() => null))?.rows[0]?.v === "first", 60_000, 200);

      // A daily schedule, in a time zone the page says back; an unknown one is refused.
      expect((await browser.post(`${page}/schedule`, { hour: "3", timezone: "Mars/Olympus_Mons" })).status).toBe(303);
      expect((await browser.get(page)).text).toContain("Unknown time zone: Mars/Olympus_Mons");
      expect((await browser.post(`${page}/schedule`, { hour: "3", timezone: "Europe/Istanbul" })).status).toBe(303);
      expect((await browser.get(page)).text).toContain("Every day at 03:00 Europe/Istanbul.");
      const schedules = await api(`/client/v11/databases/${created.body.id}/transfer-schedules`, { token: owner.token });
      expect(schedules.body).toEqual([expect.objectContaining({ name: "DATABASE_URL", hour: 3, timezone: "Europe/Istanbul" })]);
      expect((await browser.post(`${page}/schedule/remove`, {})).status).toBe(303);
      expect((await browser.get(page)).text).toContain("Not scheduled.");
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});
