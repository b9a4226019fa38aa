import { eq, inArray } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashToken } from "../../src/auth/tokens.ts";
import { apps, oauthAuthorizations } from "../../src/db/schema/index.ts";
import { api, fireCron, platform, tlsAgent } from "../support/api.ts";
import { appName, closeDb, db, makeAccount } from "../support/factories.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";

// The Worker entry as workerd runs it: scheduled(), the RateLimiter Durable Object
// binding, and the routes that must not need the database.

afterAll(closeDb);

const DAY = 86_400_000;

/** A token row for `accountId` with the given expiry or revocation time. */
async function insertAuthorization(accountId: string, times: { expiresAt?: Date; revokedAt?: Date }) {
  const token = `dpl_${crypto.randomUUID().replace(/-/g, "")}`;
  const [row] = await (await db())
    .insert(oauthAuthorizations)
    .values({ accountId, tokenHash: await hashToken(token), tokenPrefix: token.slice(0, 8), tokenSuffix: token.slice(-4), ...times })
    .returning({ id: oauthAuthorizations.id });
  return row!.id;
}

describe("scheduled()", () => {
  it("is not reachable from the platform's HTTPS port: only the control socket fires it", async () => {
    const owner = await makeAccount();
    const revokedLongAgo = await insertAuthorization(owner.id, { revokedAt: new Date(Date.now() - 40 * DAY) });
    for (const path of ["/cdn-cgi/handler/scheduled?cron=*/10+*+*+*+*", "/cdn-cgi/mf/scheduled", "/__scheduled?cron=*/10+*+*+*+*", "/scheduled"]) {
      const res = await fetch(platform().apiUrl + path, { method: "POST", body: "{}", dispatcher: tlsAgent() });
      // The API's own answer to an unknown path without credentials.
      expect(res.status, path).toBe(401);
      expect(await res.json()).toMatchObject({ id: "unauthorized" });
    }
    const left = await (await db()).select({ id: oauthAuthorizations.id }).from(oauthAuthorizations).where(eq(oauthAuthorizations.id, revokedLongAgo));
    expect(left).toHaveLength(1);
  });

  it("purges tokens expired or revoked over 30 days ago and keeps the rest", async () => {
    const owner = await makeAccount();
    const now = Date.now();
    const expiredLongAgo = await insertAuthorization(owner.id, { expiresAt: new Date(now - 40 * DAY) });
    const revokedLongAgo = await insertAuthorization(owner.id, { revokedAt: new Date(now - 40 * DAY) });
    const expiredYesterday = await insertAuthorization(owner.id, { expiresAt: new Date(now - DAY) });
    const revokedLastMonth = await insertAuthorization(owner.id, { revokedAt: new Date(now - 29 * DAY) });
    const ids = [expiredLongAgo, revokedLongAgo, expiredYesterday, revokedLastMonth];

    await fireCron();

    const left = await (await db()).select({ id: oauthAuthorizations.id }).from(oauthAuthorizations).where(inArray(oauthAuthorizations.id, ids));
    expect(left.map((r) => r.id).sort()).toEqual([expiredYesterday, revokedLastMonth].sort());
    // The owner's live token is untouched and still works.
    expect((await api("/account", { token: owner.token })).status).toBe(200);
    // A second run finds nothing more of these to delete and still succeeds.
    await fireCron();
    const again = await (await db()).select({ id: oauthAuthorizations.id }).from(oauthAuthorizations).where(inArray(oauthAuthorizations.id, ids));
    expect(again).toHaveLength(2);
  });
});

describe("the RateLimiter Durable Object", () => {
  let worker: SecondWorker;
  beforeAll(async () => {
    worker = await startSecondWorker({ RATE_LIMIT_PER_HOUR: "3" });
  });
  afterAll(() => worker?.stop());

  it("counts down each token's budget and answers 429 rate_limit when it is spent", async () => {
    const owner = await makeAccount();
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await worker.api("/account", { token: owner.token });
      expect(res.status).toBe(200);
      remaining.push(res.headers.get("ratelimit-remaining"));
    }
    expect(remaining).toEqual(["2", "1", "0"]);

    const name = appName("limited");
    const refused = await worker.api("/apps", { method: "POST", token: owner.token, body: { name } });
    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ id: "rate_limit", message: expect.any(String) });
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    // The refused call did nothing.
    expect(await (await db()).select().from(apps).where(eq(apps.name, name))).toEqual([]);
  });

  it("keeps a separate budget for every token", async () => {
    const spent = await makeAccount();
    for (let i = 0; i < 4; i++) await worker.api("/account", { token: spent.token });
    expect((await worker.api("/account", { token: spent.token })).status).toBe(429);

    const other = await makeAccount();
    const res = await worker.api("/account", { token: other.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-remaining")).toBe("2");
  });

  it("grants a Worker instance calls in advance without losing any: the count is exact, and calls left unspent go back", async () => {
    const generous = await startSecondWorker({ RATE_LIMIT_PER_HOUR: "50000" });
    try {
      const owner = await makeAccount();
      // Eight calls inside one grant's second (on a busy machine a round may take longer, and
      // the budget refills meanwhile: such a round is measured again).
      let remaining: number[] = [];
      for (let round = 0; round < 5; round++) {
        await new Promise((r) => setTimeout(r, 1_100));
        const began = Date.now();
        remaining = [];
        for (let i = 0; i < 8; i++) remaining.push(Number((await generous.api("/account", { token: owner.token })).headers.get("ratelimit-remaining")));
        if (Date.now() - began < 900) break;
      }
      // Spent one by one from the calls granted at once (50 here), as the Durable Object would count them.
      expect(remaining).toEqual(Array.from({ length: 8 }, (_, i) => remaining[0]! - i));
      expect(remaining[0]).toBeLessThanOrEqual(49_999);
      // After the grant's second, the 42 unspent calls are given back with the next request.
      await new Promise((r) => setTimeout(r, 1_200));
      const next = Number((await generous.api("/account", { token: owner.token })).headers.get("ratelimit-remaining"));
      expect(next).toBeGreaterThanOrEqual(remaining[7]! - 1);
    } finally {
      await generous.stop();
    }
  }, 60_000);

  it("gives the platform's default configuration Heroku's 4,500 an hour", async () => {
    const owner = await makeAccount();
    const first = await api("/account", { token: owner.token });
    const second = await api("/account", { token: owner.token });
    expect(first.status).toBe(200);
    expect(first.headers.get("ratelimit-remaining")).toBe("4499");
    expect(second.headers.get("ratelimit-remaining")).toBe("4498");
  });
});

describe("/health", () => {
  let worker: SecondWorker;
  beforeAll(async () => {
    // Nothing listens on port 1: any request that opens the database fails.
    worker = await startSecondWorker({ DATABASE_URL: "postgres://nobody:nothing@127.0.0.1:1/none" });
  });
  afterAll(() => worker?.stop());

  it("answers without touching the database", async () => {
    const health = await worker.api("/health");
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: "ok" });

    const owner = await makeAccount();
    const account = await worker.api("/account", { token: owner.token });
    expect(account.status).toBe(500);
    expect(account.body.id).toBe("internal_server_error");
  });
});

describe("the HYPERDRIVE binding", () => {
  it("is how the Worker reaches its database when it is bound: DATABASE_URL is then not used", async () => {
    const unreachable = "postgres://nobody:nothing@127.0.0.1:1/none";
    const owner = await makeAccount();
    const bound = await startSecondWorker({ DATABASE_URL: unreachable }, { hyperdrive: platform().databaseUrl });
    try {
      const res = await bound.api("/account", { token: owner.token });
      expect(res.status, res.text).toBe(200);
      expect(res.body.email).toBe(owner.email);
    } finally {
      await bound.stop();
    }
    // Without the binding the same Worker has only the unreachable URL.
    const unbound = await startSecondWorker({ DATABASE_URL: unreachable });
    try {
      const res = await unbound.api("/account", { token: owner.token });
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(res.body).toHaveProperty("id");
    } finally {
      await unbound.stop();
    }
  }, 60_000);
});
