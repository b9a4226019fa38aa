import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { openDb, type DbHandle } from "../../src/db/client.ts";
import { accounts } from "../../src/db/schema/index.ts";
import { startNeonProxy, type NeonProxy } from "../../src/local/neon-proxy.ts";
import { createAccount } from "../../src/services/access/accounts.ts";
import { platform } from "../support/api.ts";
import { appName, closeDb, db, makeAccount } from "../support/factories.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";

// Production databases on Neon are reached with the Neon serverless driver (Postgres
// over WebSockets). Here a Neon-looking host name selects that driver, and the local
// proxy carries its frames to the platform's Postgres.

const NEON_HOST = "ep-test-123456.us-east-2.aws.neon.tech";

/** The platform's database URL with its host swapped for a Neon endpoint's. */
function neonLookingUrl(password?: string): string {
  const url = new URL(platform().databaseUrl);
  url.hostname = NEON_HOST;
  url.port = "";
  if (password !== undefined) url.password = password;
  return url.toString();
}

function localPostgres() {
  const url = new URL(platform().databaseUrl);
  return { host: url.hostname, port: Number(url.port || 5432) };
}

let proxy: NeonProxy;
beforeAll(async () => {
  proxy = await startNeonProxy({ target: localPostgres() });
});
afterAll(async () => {
  await proxy?.close();
  await closeDb();
});

describe("the WebSocket-to-TCP proxy", () => {
  it("listens on 127.0.0.1 and names itself in NEON_WS_PROXY form", () => {
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}/v2`);
  });

  it("relays to ?address=host:port when it has no fixed target", async () => {
    const open = await startNeonProxy();
    try {
      const { host, port } = localPostgres();
      const ws = new WebSocket(`ws://${open.address}?address=${host}:${port}`);
      const reply = await new Promise<Buffer>((resolve, reject) => {
        ws.once("open", () => ws.send(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]))); // SSLRequest
        ws.once("message", (data) => resolve(data as Buffer));
        ws.once("error", reject);
      });
      ws.close();
      // Postgres answers an SSLRequest with one byte: S or N.
      expect(["S", "N"]).toContain(reply.toString("latin1"));
      expect(open.connections()).toBe(1);
    } finally {
      await open.close();
    }
  });

  it("refuses an upgrade without an address, and one to a closed port", async () => {
    const open = await startNeonProxy();
    try {
      const status = (url: string) =>
        new Promise<number>((resolve) => {
          const ws = new WebSocket(url);
          ws.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
          ws.once("open", () => (ws.close(), resolve(101)));
          ws.once("error", () => resolve(-1));
        });
      expect(await status(`ws://${open.address}`)).toBe(400);
      expect(await status(`ws://${open.address}?address=127.0.0.1:1`)).toBe(502);
      expect(open.connections()).toBe(0);
    } finally {
      await open.close();
    }
  });
});

describe("openDb with a Neon URL (Node)", () => {
  let handle: DbHandle;
  beforeAll(async () => {
    handle = await openDb(neonLookingUrl(), { neonWsProxy: proxy.address, webSocketConstructor: WebSocket });
  });
  afterAll(() => handle?.close());

  it("uses the Neon driver and queries through the proxy", async () => {
    const before = proxy.connections();
    expect(handle.driver).toBe("neon");
    // Database is driver-neutral, so execute()'s result type is too; both drivers return { rows }.
    const result = (await handle.db.execute(sql`select current_database() as name, 41 + 1 as answer`)) as unknown as { rows: unknown[] };
    expect(result.rows).toEqual([{ name: new URL(platform().databaseUrl).pathname.slice(1), answer: 42 }]);
    expect(proxy.connections()).toBeGreaterThan(before);
  });

  it("commits a transaction that the pg driver then sees", async () => {
    const email = `neon-${appName()}@example.com`;
    const row = await createAccount(handle.db, { email, password: "a long password" });
    const seen = await (await db()).select().from(accounts).where(eq(accounts.id, row.id));
    expect(seen.map((a) => a.email)).toEqual([email]);
  });

  it("rolls a failed transaction back", async () => {
    const email = `neon-${appName()}@example.com`;
    const failure = handle.db.transaction(async (tx) => {
      await tx.insert(accounts).values({ email, passwordHash: "x" });
      const inside = await tx.select().from(accounts).where(eq(accounts.email, email));
      expect(inside).toHaveLength(1);
      throw new Error("abandon");
    });
    await expect(failure).rejects.toThrow("abandon");
    expect(await handle.db.select().from(accounts).where(eq(accounts.email, email))).toEqual([]);
    expect(await (await db()).select().from(accounts).where(eq(accounts.email, email))).toEqual([]);
  });

  it("still has Postgres check the password", async () => {
    const wrong = await openDb(neonLookingUrl("not-the-password"), { neonWsProxy: proxy.address, webSocketConstructor: WebSocket });
    try {
      const err = await wrong.db.execute(sql`select 1`).then(
        () => null,
        (e: Error) => e,
      );
      // Drizzle wraps the driver's error; Postgres's own message is its cause.
      expect(String((err?.cause as Error | undefined)?.message)).toMatch(/password authentication failed/);
    } finally {
      await wrong.close();
    }
  });
});

describe("the Worker with a Neon DATABASE_URL (workerd)", () => {
  let worker: SecondWorker;
  beforeAll(async () => {
    worker = await startSecondWorker({ DATABASE_URL: neonLookingUrl(), NEON_WS_PROXY: proxy.address });
  });
  afterAll(() => worker?.stop());

  it("creates an app and reads it back over the Neon driver", async () => {
    const before = proxy.connections();
    const owner = await makeAccount();
    const name = appName("neon");
    const created = await worker.api("/apps", { method: "POST", token: owner.token, body: { name } });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name, owner: { id: owner.id, email: owner.email }, web_url: `https://${name}.apps.localhost:${worker.port}/` });

    const read = await worker.api(`/apps/${name}`, { token: owner.token });
    expect(read.status).toBe(200);
    expect(read.body.id).toBe(created.body.id);
    const releases = await worker.api(`/apps/${name}/releases`, { token: owner.token });
    expect(releases.body.map((r: any) => r.version)).toEqual([1]);
    // One connection per request: these three went through the proxy, not over TCP.
    expect(proxy.connections() - before).toBeGreaterThanOrEqual(3);
  });
});
