import { randomBytes } from "node:crypto";
import pg from "pg";
import { PLANS } from "../../src/services/addons/catalog.ts";
import { databaseUrl, NeonProvider } from "../../src/services/addons/providers/postgres.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platform } from "../support/api.ts";
import { closeDb, makeAccount, makeApp } from "../support/factories.ts";
import { type NeonStandIn, startNeonStandIn } from "../support/neon-stand-in.ts";
import { type SecondWorker, startSecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";

afterAll(closeDb);

async function query(url: string, sql: string) {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  c.on("error", () => {});
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end().catch(() => {});
  }
}

describe("heroku-postgresql on Neon's API", () => {
  let neon: NeonStandIn;
  let worker: SecondWorker;
  let address: string;

  beforeAll(async () => {
    neon = await startNeonStandIn(platform().addonDatabaseUrl);
    const admin = new URL(platform().addonDatabaseUrl);
    address = `${admin.hostname}:${admin.port}`;
    worker = await startSecondWorker({
      NEON_API_URL: neon.url,
      NEON_API_KEY: neon.apiKey,
      NEON_PROJECT_ID: neon.projectId,
      NEON_BRANCH_ID: neon.branchId,
      // Neon's endpoint host does not resolve here: apps get the stand-in's server.
      ADDON_POSTGRES_PUBLIC_ADDRESS: address,
      ADDON_POSTGRES_ADMIN_URL: "",
    });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await neon?.close();
  });

  it("provisions a role and a database it owns through the API, rotates its password, ends its sessions, resets it and deletes both", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const created = await worker.api(`/apps/${app.name}/addons`, {
        method: "POST",
        token: owner.token,
        body: { plan: { name: "heroku-postgresql:essential-0" } },
      });
      expect(created.status, created.text).toBe(201);
      await waitFor(
        "provisioned",
        async () => (await worker.api(`/apps/${app.name}/addons/${created.body.name}`, { token: owner.token })).body.state === "provisioned",
        20_000,
        100,
      );
      const url = (await worker.api(`/apps/${app.name}/config-vars`, { token: owner.token })).body.DATABASE_URL as string;
      const role = new URL(url).username;
      expect(new URL(url).host).toBe(address);
      expect(neon.calls.filter((c) => c.method === "POST").map((c) => [c.path, c.body])).toEqual([
        [`/projects/${neon.projectId}/branches/${neon.branchId}/roles`, { role: { name: role } }],
        [`/projects/${neon.projectId}/branches/${neon.branchId}/databases`, { database: { name: role, owner_name: role } }],
      ]);
      await query(url, "create table t (v int); insert into t values (7)");

      const basic = `Basic ${Buffer.from(`:${owner.token}`).toString("base64")}`;
      const rotated = await worker.api(`/postgres/v0/databases/${created.body.name}/credentials_rotation`, {
        method: "POST",
        headers: { Authorization: basic },
        body: {},
      });
      expect(rotated.status, rotated.text).toBe(200);
      expect(neon.calls.at(-1)).toMatchObject({ method: "POST", path: `/projects/${neon.projectId}/branches/${neon.branchId}/roles/${role}/reset_password` });
      const after = (await worker.api(`/apps/${app.name}/config-vars`, { token: owner.token })).body.DATABASE_URL as string;
      expect(after).not.toBe(url);
      await expect(query(url, "select 1")).rejects.toThrow(/password authentication failed/);
      expect((await query(after, "select v from t")).rows).toEqual([{ v: 7 }]);
      const info = await worker.api(`/client/v11/databases/${created.body.id}`, { token: owner.token });
      expect(info.status, info.text).toBe(200);
      expect(info.body.info).toContainEqual({ name: "Tables", values: ["1"] });

      // pg:killall with the role's own credentials; pg:reset as Neon drops and makes a database, with a trusted extension.
      const open = new pg.Client({ connectionString: after });
      let ended: Error | undefined;
      open.on("error", (err) => (ended = err));
      await open.connect();
      const killall = await worker.api(`/client/v11/databases/${created.body.id}/connection_reset`, { method: "POST", token: owner.token });
      expect(killall.status, killall.text).toBe(200);
      expect(killall.body.message).toBe(`Ended 1 connection to ${created.body.name}.`);
      await expect(open.query("select 1")).rejects.toThrow();
      expect(ended).toBeDefined();
      await open.end().catch(() => {});
      const reset = await worker.api(`/client/v11/databases/${created.body.id}/reset`, { method: "PUT", token: owner.token, body: { extensions: ["citext"] } });
      expect(reset.status, reset.text).toBe(200);
      expect(neon.calls.slice(-2).map((c) => [c.method, c.path])).toEqual([
        ["DELETE", `/projects/${neon.projectId}/branches/${neon.branchId}/databases/${role}`],
        ["POST", `/projects/${neon.projectId}/branches/${neon.branchId}/databases`],
      ]);
      expect((await query(after, "select count(*)::int as n from pg_tables where tablename = 't'")).rows).toEqual([{ n: 0 }]);
      expect((await query(after, "select extname from pg_extension where extname = 'citext'")).rows).toEqual([{ extname: "citext" }]);

      const destroyed = await worker.api(`/apps/${app.name}/addons/${created.body.name}`, { method: "DELETE", token: owner.token });
      expect(destroyed.status, destroyed.text).toBe(200);
      expect(neon.calls.filter((c) => c.method === "DELETE").map((c) => c.path)).toEqual([
        `/projects/${neon.projectId}/branches/${neon.branchId}/databases/${role}`,
        `/projects/${neon.projectId}/branches/${neon.branchId}/databases/${role}`,
        `/projects/${neon.projectId}/branches/${neon.branchId}/databases/${role}_restore`,
        `/projects/${neon.projectId}/branches/${neon.branchId}/databases/${role}_replaced`,
        `/projects/${neon.projectId}/branches/${neon.branchId}/roles/${role}`,
      ]);
      const gone = await query(
        platform().addonDatabaseUrl,
        `select (select count(*) from pg_roles where rolname = '${role}') + (select count(*) from pg_database where datname = '${role}') as n`,
      );
      expect(Number(gone.rows[0].n)).toBe(0);
    } finally {
      await worker.api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
    }
  });

  it("restores into a fresh database that takes the add-on's place through the API only once it succeeded", async () => {
    const provider = new NeonProvider({ apiUrl: neon.url, apiKey: neon.apiKey, projectId: neon.projectId, branchId: neon.branchId, publicAddress: address });
    const resource = `addon_${randomBytes(10).toString("hex")}`;
    const creds = await provider.provision(resource, PLANS[0]!);
    const tenant = databaseUrl(creds);
    try {
      await query(tenant, "create table kept (v text); insert into kept values ('before')");
      // What the restore writes there, as the add-on's own role (Neon admits it to every database it may connect to).
      const asRestore = async (staging: string, sql: string) => {
        const admin = new URL(platform().addonDatabaseUrl);
        admin.pathname = `/${staging}`;
        await query(admin.toString(), `set role ${resource}; ${sql}`);
      };
      const failed = await provider.prepareRestore(resource, PLANS[0]!, creds);
      expect(failed).toEqual({ ...creds, database: `${resource}_restore` });
      await asRestore(failed.database, "create table half_done (x int)");
      await provider.discardRestore(resource);
      expect((await query(tenant, "select v from kept")).rows).toEqual([{ v: "before" }]);
      expect((await query(platform().addonDatabaseUrl, `select count(*)::int as n from pg_database where datname = '${failed.database}'`)).rows).toEqual([
        { n: 0 },
      ]);

      const done = await provider.prepareRestore(resource, PLANS[0]!, creds);
      await asRestore(done.database, "create table restored (v text); insert into restored values ('from the backup')");
      await provider.finishRestore(resource);
      const path = `/projects/${neon.projectId}/branches/${neon.branchId}/databases`;
      expect(neon.calls.slice(-3).map((c) => [c.method, c.path, c.body])).toEqual([
        ["DELETE", `${path}/${resource}_replaced`, undefined],
        ["PATCH", `${path}/${resource}`, { database: { name: `${resource}_replaced` } }],
        ["PATCH", `${path}/${resource}_restore`, { database: { name: resource } }],
      ]);
      await provider.dropReplaced(resource);
      expect(neon.calls.at(-1)).toMatchObject({ method: "DELETE", path: `${path}/${resource}_replaced` });
      expect((await query(tenant, "select v from restored")).rows).toEqual([{ v: "from the backup" }]);
      await expect(query(tenant, "select v from kept")).rejects.toThrow(/does not exist/);
    } finally {
      await provider.destroy(resource);
    }
  });

  it("refuses the API's answer with a wrong key as a failed provisioning, attaching nothing", async () => {
    const wrong = await startSecondWorker({
      NEON_API_URL: neon.url,
      NEON_API_KEY: "napi_not_the_key",
      NEON_PROJECT_ID: neon.projectId,
      NEON_BRANCH_ID: neon.branchId,
      ADDON_POSTGRES_PUBLIC_ADDRESS: address,
      ADDON_POSTGRES_ADMIN_URL: "",
    });
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      const created = await wrong.api(`/apps/${app.name}/addons`, { method: "POST", token: owner.token, body: { plan: "heroku-postgresql" } });
      expect(created.status, created.text).toBe(201);
      const ended = await waitFor(
        "provisioning to end",
        async () => {
          const info = await wrong.api(`/apps/${app.name}/addons/${created.body.name}`, { token: owner.token });
          return info.body.state !== "provisioning" ? info.body : undefined;
        },
        20_000,
        100,
      );
      expect(ended.state).toBe("deprovisioned");
      expect(ended.provision_message).toMatch(/Neon's API answered 401/);
      expect((await wrong.api(`/apps/${app.name}/config-vars`, { token: owner.token })).body).toEqual({});
    } finally {
      await wrong.api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
      await wrong.stop();
    }
  }, 120_000);
});
