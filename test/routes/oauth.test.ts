import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { looksLikeToken } from "../../src/auth/tokens.ts";
import { oauthAuthorizations } from "../../src/db/schema/index.ts";
import { createAuthorization } from "../../src/services/access/authorizations.ts";
import { api } from "../support/api.ts";
import { closeDb, db, makeAccount, type TestAccount } from "../support/factories.ts";

afterAll(closeDb);

const CLI_LOGIN_BODY = { description: "Heroku CLI login from host", expires_in: 2592000, scope: ["global"] };

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** `heroku login -i`: POST /oauth/authorizations with Basic email:password. */
const login = (email: string, password: string, body: unknown = CLI_LOGIN_BODY) =>
  api("/oauth/authorizations", { method: "POST", body, headers: { Authorization: basic(email, password) } });

/** Every authorization row of an account, revoked and expired ones included. */
async function rowsOf(accountId: string) {
  return (await db()).select().from(oauthAuthorizations).where(eq(oauthAuthorizations.accountId, accountId));
}

const redacted = (token: string) => `${token.slice(0, 8)}**********${token.slice(-4)}`;

const whoami = (token: string) => api("/account", { token });

/** Gives an account its API key (the default authorization), as `auth:regenerate` does. */
async function makeApiKey(account: TestAccount) {
  return createAuthorization(await db(), account.id, { description: "API key", isDefault: true }, { email: account.email });
}

describe("POST /oauth/authorizations with Basic email:password", () => {
  it("signs the person in with the body `heroku login -i` sends and issues a working token", async () => {
    const account = await makeAccount();
    const before = await rowsOf(account.id);
    const res = await login(account.email, account.password);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      description: CLI_LOGIN_BODY.description,
      scope: ["global"],
      user: { id: account.id, email: account.email },
    });
    const token: string = res.body.access_token.token;
    expect(looksLikeToken(token)).toBe(true);
    expect(token).not.toBe(account.token);
    expect(res.body.access_token.id).toBe(res.body.id);

    const me = await whoami(token);
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: account.id, email: account.email });

    const after = await rowsOf(account.id);
    expect(after).toHaveLength(before.length + 1);
    const row = after.find((r) => r.id === res.body.id)!;
    // Only a hash is kept, never the token itself.
    expect(row.tokenHash).not.toContain(token);
    expect(JSON.stringify(row)).not.toContain(token);
  });

  it("accepts the email in any case", async () => {
    const account = await makeAccount();
    const res = await login(account.email.toUpperCase(), account.password);
    expect(res.status).toBe(201);
    expect(res.body.user.id).toBe(account.id);
  });

  it("answers the same 401 for a wrong password and an unknown email, and issues nothing", async () => {
    const account = await makeAccount();
    const before = await rowsOf(account.id);
    const wrong = await login(account.email, `${account.password}x`);
    const unknown = await login(`nobody-${Date.now()}@example.com`, account.password);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.id).toBe("unauthorized");
    expect(typeof wrong.body.message).toBe("string");
    expect(unknown.body).toEqual(wrong.body);
    expect(wrong.text).not.toContain(account.email);
    expect(await rowsOf(account.id)).toEqual(before);
  });

  it("answers the same 401 for an email no account can have", async () => {
    const account = await makeAccount();
    const wrong = await login(account.email, `${account.password}x`);
    const nul = await login(`${account.email}\u0000`, account.password);
    expect(nul.status).toBe(401);
    expect(nul.body).toEqual(wrong.body);
  });

  it("refuses a request with no credentials at all", async () => {
    const res = await api("/oauth/authorizations", { method: "POST", body: CLI_LOGIN_BODY });
    expect(res.status).toBe(401);
    expect(res.body.id).toBe("unauthorized");
  });

  it("issues another token to a caller that already has one", async () => {
    const account = await makeAccount();
    const res = await api("/oauth/authorizations", { method: "POST", token: account.token, body: { description: "ci" } });
    expect(res.status).toBe(201);
    expect(res.body.description).toBe("ci");
    expect(res.body.access_token.expires_in).toBeNull();
    expect((await whoami(res.body.access_token.token)).body.id).toBe(account.id);
  });

  it("honours expires_in: the token works until it expires, then gets 401", async () => {
    const account = await makeAccount();
    const res = await login(account.email, account.password, { ...CLI_LOGIN_BODY, expires_in: 3600 });
    expect(res.status).toBe(201);
    const expiresIn: number = res.body.access_token.expires_in;
    expect(expiresIn).toBeGreaterThan(3500);
    expect(expiresIn).toBeLessThanOrEqual(3600);

    const [row] = (await rowsOf(account.id)).filter((r) => r.id === res.body.id);
    const lifetime = (row!.expiresAt!.getTime() - row!.createdAt.getTime()) / 1000;
    expect(lifetime).toBeCloseTo(3600, 0);

    const token: string = res.body.access_token.token;
    expect((await whoami(token)).status).toBe(200);

    await (await db()).update(oauthAuthorizations).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(oauthAuthorizations.id, res.body.id));
    const expired = await whoami(token);
    expect(expired.status).toBe(401);
    expect(expired.body.id).toBe("unauthorized");
    // The account's other token is untouched.
    expect((await whoami(account.token)).status).toBe(200);
  });

  it("keeps a token without expires_in forever", async () => {
    const account = await makeAccount();
    const { description, scope } = CLI_LOGIN_BODY;
    const res = await login(account.email, account.password, { description, scope });
    expect(res.status).toBe(201);
    expect(res.body.access_token.expires_in).toBeNull();
    const [row] = (await rowsOf(account.id)).filter((r) => r.id === res.body.id);
    expect(row!.expiresAt).toBeNull();
  });

  it.each([
    ["an unknown field", { ...CLI_LOGIN_BODY, colour: "blue" }],
    ["a numeric description", { ...CLI_LOGIN_BODY, description: 42 }],
    ["expires_in as a string", { ...CLI_LOGIN_BODY, expires_in: "3600" }],
    ["a fractional expires_in", { ...CLI_LOGIN_BODY, expires_in: 1.5 }],
    ["a negative expires_in", { ...CLI_LOGIN_BODY, expires_in: -60 }],
    ["a zero expires_in", { ...CLI_LOGIN_BODY, expires_in: 0 }],
    ["an expires_in of a century", { ...CLI_LOGIN_BODY, expires_in: 100 * 365 * 24 * 3600 }],
    ["scope as a string", { ...CLI_LOGIN_BODY, scope: "global" }],
    ["scope with a number", { ...CLI_LOGIN_BODY, scope: [1] }],
    ["an array body", [CLI_LOGIN_BODY]],
    ["a NUL in the description", { ...CLI_LOGIN_BODY, description: "host\u0000name" }],
    ["a NUL in a scope", { ...CLI_LOGIN_BODY, scope: ["global\u0000"] }],
  ])("answers 422 for %s and issues nothing", async (_label, body) => {
    const account = await makeAccount();
    const before = await rowsOf(account.id);
    const res = await login(account.email, account.password, body);
    expect(res.status).toBe(422);
    expect(res.body.id).toBe("invalid_params");
    expect(typeof res.body.message).toBe("string");
    expect(await rowsOf(account.id)).toEqual(before);
  });

  it("answers 400 for malformed JSON and issues nothing", async () => {
    const account = await makeAccount();
    const before = await rowsOf(account.id);
    const res = await api("/oauth/authorizations", {
      method: "POST",
      rawBody: '{"description": "x",',
      headers: { Authorization: basic(account.email, account.password), "Content-Type": "application/json" },
    });
    expect(res.status).toBe(400);
    expect(res.body.id).toBe("bad_request");
    expect(await rowsOf(account.id)).toEqual(before);
  });
});

describe("GET /oauth/authorizations", () => {
  it("lists only the caller's live tokens, redacted", async () => {
    const account = await makeAccount();
    const other = await makeAccount();
    const kept = await login(account.email, account.password);
    const revoked = await login(account.email, account.password);
    const expired = await login(account.email, account.password);
    await api(`/oauth/authorizations/${revoked.body.id}`, { method: "DELETE", token: account.token });
    await (await db()).update(oauthAuthorizations).set({ expiresAt: sql`now() - interval '1 second'` }).where(eq(oauthAuthorizations.id, expired.body.id));

    const res = await api("/oauth/authorizations", { token: account.token });
    expect(res.status).toBe(200);
    const ownIds = (await rowsOf(account.id)).map((r) => r.id);
    const listed = res.body.map((a: any) => a.id).sort();
    const factoryTokenId = ownIds.find((id) => ![kept.body.id, revoked.body.id, expired.body.id].includes(id))!;
    expect(listed).toEqual([kept.body.id, factoryTokenId].sort());
    for (const a of res.body) expect(a.user).toMatchObject({ id: account.id, email: account.email });

    const byId = Object.fromEntries(res.body.map((a: any) => [a.id, a.access_token.token]));
    expect(byId[kept.body.id]).toBe(redacted(kept.body.access_token.token));
    expect(byId[factoryTokenId]).toBe(redacted(account.token));
    // No clear token ever comes back from a list.
    for (const clear of [account.token, kept.body.access_token.token, revoked.body.access_token.token, other.token]) {
      expect(res.text).not.toContain(clear);
    }
    // The other account sees only its own.
    const theirs = await api("/oauth/authorizations", { token: other.token });
    expect(theirs.body.map((a: any) => a.user.id)).toEqual([other.id]);
  });
});

describe("GET /oauth/authorizations/{id}", () => {
  it("answers 404 resource authorization for ~ when the account has no API key", async () => {
    const account = await makeAccount();
    const res = await api("/oauth/authorizations/~", { token: account.token });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "authorization" });
  });

  it("finds the API key under ~, redacted", async () => {
    const account = await makeAccount();
    const key = await makeApiKey(account);
    const res = await api("/oauth/authorizations/~", { token: account.token });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(key.row.id);
    expect(res.body.access_token.token).toBe(redacted(key.token));
  });

  it("finds the caller's own authorization and hides another account's", async () => {
    const account = await makeAccount();
    const other = await makeAccount();
    const issued = await login(account.email, account.password);
    const own = await api(`/oauth/authorizations/${issued.body.id}`, { token: account.token });
    expect(own.status).toBe(200);
    expect(own.body.access_token.token).toBe(redacted(issued.body.access_token.token));
    const foreign = await api(`/oauth/authorizations/${issued.body.id}`, { token: other.token });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ id: "not_found", resource: "authorization" });
    expect(foreign.text).not.toContain(issued.body.access_token.token.slice(0, 8));
  });

  it("answers 404 for an id that is not a UUID", async () => {
    const account = await makeAccount();
    const res = await api("/oauth/authorizations/not-a-uuid", { token: account.token });
    expect(res.status).toBe(404);
    expect(res.body.resource).toBe("authorization");
  });
});

describe("DELETE /oauth/authorizations/{id}", () => {
  it("revokes the token at once", async () => {
    const account = await makeAccount();
    const issued = await login(account.email, account.password);
    const token: string = issued.body.access_token.token;
    expect((await whoami(token)).status).toBe(200);

    const res = await api(`/oauth/authorizations/${issued.body.id}`, { method: "DELETE", token: account.token });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(issued.body.id);
    expect(res.body.access_token.token).toBe(redacted(token));

    const after = await whoami(token);
    expect(after.status).toBe(401);
    expect(after.body.id).toBe("unauthorized");
    const [row] = (await rowsOf(account.id)).filter((r) => r.id === issued.body.id);
    expect(row!.revokedAt).not.toBeNull();
    // Revoking twice finds nothing.
    const again = await api(`/oauth/authorizations/${issued.body.id}`, { method: "DELETE", token: account.token });
    expect(again.status).toBe(404);
  });

  it("answers 404 for another account's authorization and leaves it working", async () => {
    const account = await makeAccount();
    const other = await makeAccount();
    const before = await rowsOf(account.id);
    const target = before[0]!;
    const res = await api(`/oauth/authorizations/${target.id}`, { method: "DELETE", token: other.token });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "authorization" });
    expect((await whoami(account.token)).status).toBe(200);
    expect(await rowsOf(account.id)).toEqual(before);
  });
});

describe("DELETE /oauth/sessions/~", () => {
  it("revokes the calling token when it is not the API key", async () => {
    const account = await makeAccount();
    const issued = await login(account.email, account.password);
    const token: string = issued.body.access_token.token;
    const res = await api("/oauth/sessions/~", { method: "DELETE", token });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(issued.body.id);
    expect((await whoami(token)).status).toBe(401);
    // Only the calling token ends.
    expect((await whoami(account.token)).status).toBe(200);
  });

  it("answers 404 resource session for the account's API key and keeps it", async () => {
    const account = await makeAccount();
    const key = await makeApiKey(account);
    const before = await rowsOf(account.id);
    const res = await api("/oauth/sessions/~", { method: "DELETE", token: key.token });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "session" });
    expect((await whoami(key.token)).status).toBe(200);
    expect(await rowsOf(account.id)).toEqual(before);
  });

  it("ends a session by its id (heroku sessions:destroy): only the account's own, never the API key", async () => {
    const account = await makeAccount();
    const stranger = await makeAccount();
    const session = await login(account.email, account.password);
    expect(session.status).toBe(201);
    const listed = await api("/oauth/sessions", { token: account.token });
    expect(listed.body.map((s: { id: string; description: string }) => s.description)).toContain(session.body.description);

    const before = await rowsOf(account.id);
    const foreign = await api(`/oauth/sessions/${session.body.id}`, { method: "DELETE", token: stranger.token });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ id: "not_found", resource: "session" });
    const key = await makeApiKey(account);
    const notASession = await api(`/oauth/sessions/${key.row.id}`, { method: "DELETE", token: account.token });
    expect(notASession.status).toBe(404);
    expect((await api("/oauth/sessions/not-an-id", { method: "DELETE", token: account.token })).status).toBe(404);
    expect((await whoami(key.token)).status).toBe(200);
    expect((await rowsOf(account.id)).filter((r) => r.id !== key.row.id)).toEqual(before);

    const ended = await api(`/oauth/sessions/${session.body.id}`, { method: "DELETE", token: account.token });
    expect(ended.status).toBe(200);
    expect(ended.body.id).toBe(session.body.id);
    expect((await whoami(session.body.access_token.token)).status).toBe(401);
    expect((await whoami(account.token)).status).toBe(200);
  });
});
