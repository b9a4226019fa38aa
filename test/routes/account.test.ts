import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount } from "../support/factories.ts";

afterAll(closeDb);

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe("GET /account", () => {
  it("answers the caller's account in Heroku's shape", async () => {
    const account = await makeAccount();
    const started = Date.now();
    const res = await api("/account", { token: account.token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.body).toMatchObject({
      id: account.id,
      email: account.email,
      name: null,
      verified: false,
      two_factor_authentication: false,
      federated: false,
      beta: false,
      allow_tracking: false,
      suspended_at: null,
      delinquent_at: null,
      default_organization: null,
      default_team: null,
      last_login: null,
    });
    expect(res.body.created_at).toMatch(ISO_TIME);
    expect(res.body.updated_at).toMatch(ISO_TIME);
    expect(Math.abs(Date.parse(res.body.created_at) - started)).toBeLessThan(60_000);
    // No secret material leaves the server.
    expect(res.text).not.toContain("pbkdf2");
    expect(res.body).not.toHaveProperty("password_hash");
    expect(res.body).not.toHaveProperty("passwordHash");
  });

  it("records the time of a password login as last_login", async () => {
    const account = await makeAccount();
    const basic = Buffer.from(`${account.email}:${account.password}`).toString("base64");
    const login = await api("/oauth/authorizations", { method: "POST", body: {}, headers: { Authorization: `Basic ${basic}` } });
    expect(login.status).toBe(201);
    const res = await api("/account", { token: account.token });
    expect(res.body.last_login).toMatch(ISO_TIME);
    expect(Math.abs(Date.parse(res.body.last_login) - Date.now())).toBeLessThan(60_000);
  });

  it("shows each caller only their own account", async () => {
    const a = await makeAccount();
    const b = await makeAccount();
    expect((await api("/account", { token: a.token })).body.email).toBe(a.email);
    expect((await api("/account", { token: b.token })).body.email).toBe(b.email);
  });

  it.each([
    ["no token", null],
    ["a malformed token", "not-a-token"],
    ["a well-formed unknown token", `dpl_${"A".repeat(43)}`],
  ])("answers 401 for %s", async (_label, token) => {
    const res = await api("/account", { token });
    expect(res.status).toBe(401);
    expect(res.body.id).toBe("unauthorized");
    expect(typeof res.body.message).toBe("string");
  });
});

describe("Request-Id", () => {
  it("echoes a UUID the client sends", async () => {
    const account = await makeAccount();
    const id = randomUUID();
    const res = await api("/account", { token: account.token, headers: { "Request-Id": id } });
    expect(res.status).toBe(200);
    expect(res.headers.get("request-id")).toBe(id);
  });

  it("keeps the first of a comma-separated list", async () => {
    const account = await makeAccount();
    const [first, second] = [randomUUID(), randomUUID()];
    const res = await api("/account", { token: account.token, headers: { "Request-Id": `${first},${second}` } });
    expect(res.headers.get("request-id")).toBe(first);
  });

  it.each([["not-a-uuid"], ["'; drop table accounts; --"], [`${randomUUID()}x`], [""]])("replaces %j with a fresh UUID", async (given) => {
    const account = await makeAccount();
    const res = await api("/account", { token: account.token, headers: { "Request-Id": given } });
    expect(res.status).toBe(200);
    const echoed = res.headers.get("request-id")!;
    expect(echoed).toMatch(UUID_RE);
    expect(echoed).not.toBe(given);
  });

  it("gives every request its own id when none is sent", async () => {
    const account = await makeAccount();
    const ids = await Promise.all([1, 2, 3].map(async () => (await api("/account", { token: account.token })).headers.get("request-id")));
    for (const id of ids) expect(id).toMatch(UUID_RE);
    expect(new Set(ids).size).toBe(3);
  });

  it("comes back on errors too", async () => {
    const id = randomUUID();
    const res = await api("/account", { headers: { "Request-Id": id } });
    expect(res.status).toBe(401);
    expect(res.headers.get("request-id")).toBe(id);
  });
});

describe("RateLimit-Remaining", () => {
  it("decreases with every call of a token", async () => {
    const account = await makeAccount();
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await api("/account", { token: account.token });
      expect(res.status).toBe(200);
      remaining.push(Number(res.headers.get("ratelimit-remaining")));
    }
    for (const n of remaining) expect(Number.isInteger(n)).toBe(true);
    expect(remaining[0]).toBeGreaterThan(0);
    expect(remaining[1]).toBeLessThan(remaining[0]!);
    expect(remaining[2]).toBeLessThan(remaining[1]!);
  });

  it("counts each token on its own", async () => {
    const a = await makeAccount();
    const b = await makeAccount();
    for (let i = 0; i < 3; i++) await api("/account", { token: a.token });
    const ra = Number((await api("/account", { token: a.token })).headers.get("ratelimit-remaining"));
    const rb = Number((await api("/account", { token: b.token })).headers.get("ratelimit-remaining"));
    expect(rb).toBeGreaterThan(ra);
  });
});

describe("Accept", () => {
  it.each([
    ["version 2", "application/vnd.heroku+json; version=2"],
    ["no version", "application/vnd.heroku+json"],
    ["version 4", "application/vnd.heroku+json; version=4"],
    ["version 33", "application/vnd.heroku+json; version=33"],
  ])("answers 400 missing_version for Heroku's type with %s", async (_label, accept) => {
    const account = await makeAccount();
    const res = await api("/account", { token: account.token, headers: { Accept: accept } });
    expect(res.status).toBe(400);
    expect(res.body.id).toBe("missing_version");
    expect(typeof res.body.message).toBe("string");
    expect(res.text).not.toContain(account.email);
  });

  it.each([
    ["version 3", "application/vnd.heroku+json; version=3"],
    ["version 3.sdk", "application/vnd.heroku+json; version=3.sdk"],
    ["version 3.account-quotas", "application/vnd.heroku+json; version=3.account-quotas"],
    ["plain JSON", "application/json"],
    ["anything", "*/*"],
  ])("serves %s", async (_label, accept) => {
    const account = await makeAccount();
    const res = await api("/account", { token: account.token, headers: { Accept: accept } });
    expect(res.status).toBe(200);
    expect(res.body.email).toBe(account.email);
  });
});
