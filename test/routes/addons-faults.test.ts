import net from "node:net";
import { eq } from "drizzle-orm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addons } from "../../src/db/schema/index.ts";
import { platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { type SecondWorker, startSecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";

afterAll(closeDb);

/**
 * The add-on server as a Worker of its own sees it: through a proxy the test can take down
 * (every connection refused at once), as a server that stopped would be.
 */
class Switchable {
  down = false;
  readonly server: net.Server;
  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      if (this.down) return void client.destroy();
      const upstream = net.connect(target.port, target.host);
      client.pipe(upstream).pipe(client);
      const end = () => (client.destroy(), upstream.destroy());
      client.on("error", end);
      upstream.on("error", end);
    });
  }
  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, "127.0.0.1", () => resolve((this.server.address() as net.AddressInfo).port)));
  }
}

describe("an add-on server that stops during provisioning", () => {
  let worker: SecondWorker;
  let proxy: Switchable;

  beforeAll(async () => {
    const admin = new URL(platform().addonDatabaseUrl);
    proxy = new Switchable({ host: admin.hostname, port: Number(admin.port) });
    const port = await proxy.listen();
    const through = new URL(admin);
    through.port = String(port);
    // The apps' URLs name the real server, as before.
    const probe = new pg.Client({ connectionString: admin.toString() });
    await probe.connect();
    const { rows } = await probe.query<{ a: string; p: string }>("select host(inet_server_addr()) as a, current_setting('port') as p");
    await probe.end();
    worker = await startSecondWorker({ ADDON_POSTGRES_ADMIN_URL: through.toString(), ADDON_POSTGRES_PUBLIC_ADDRESS: `${rows[0]!.a}:${rows[0]!.p}` });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    proxy?.server.close();
  });

  it("ends the add-on deprovisioned with the reason, attaches nothing, and a retry once it is back works", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      proxy.down = true;
      const created = await worker.api(`/apps/${app.name}/addons`, {
        method: "POST",
        token: owner.token,
        body: { plan: { name: "heroku-postgresql:essential-0" } },
      });
      expect(created.status, created.text).toBe(201);
      const failed = await waitFor(
        "provisioning to end",
        async () => {
          const info = await worker.api(`/apps/${app.name}/addons/${created.body.name}`, { token: owner.token });
          return info.body.state !== "provisioning" ? info.body : undefined;
        },
        20_000,
        100,
      );
      // `addons:create --wait` stops polling here and shows the CLI's error for this state.
      expect(failed.state).toBe("deprovisioned");
      expect(failed.provision_message).toMatch(/^Provisioning failed: the database server did not take it/);
      expect((await worker.api(`/apps/${app.name}/config-vars`, { token: owner.token })).body).toEqual({});
      expect((await worker.api(`/apps/${app.name}/addon-attachments`, { token: owner.token })).body).toEqual([]);
      const releases = await worker.api(`/apps/${app.name}/releases`, { token: owner.token });
      expect(releases.body.map((r: { description: string }) => r.description)).not.toContainEqual(expect.stringMatching(/Attach/));
      // The failed one can be removed; it never had a database.
      const removed = await worker.api(`/apps/${app.name}/addons/${created.body.name}`, { method: "DELETE", token: owner.token });
      expect(removed.status, removed.text).toBe(200);

      proxy.down = false;
      const retry = await worker.api(`/apps/${app.name}/addons`, {
        method: "POST",
        token: owner.token,
        body: { plan: { name: "heroku-postgresql:essential-0" } },
      });
      expect(retry.status, retry.text).toBe(201);
      await waitFor(
        "the retry provisioned",
        async () => (await worker.api(`/apps/${app.name}/addons/${retry.body.name}`, { token: owner.token })).body.state === "provisioned",
        20_000,
        100,
      );
      const url = (await worker.api(`/apps/${app.name}/config-vars`, { token: owner.token })).body.DATABASE_URL as string;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      expect((await client.query("select current_user as u")).rows[0].u).toBe(new URL(url).username);
      await client.end();
      expect(await (await db()).select({ state: addons.state }).from(addons).where(eq(addons.appId, app.id))).toEqual([{ state: "provisioned" }]);
    } finally {
      proxy.down = false;
      await worker.api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
    }
  });
});
