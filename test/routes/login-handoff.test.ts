import { readFileSync } from "node:fs";
import path from "node:path";
import { createHash, randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader, importJWK, SignJWT, type JWK } from "jose";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { loginAttempts, oauthAuthorizations } from "../../src/db/schema/index.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, type TestAccount } from "../support/factories.ts";

afterAll(closeDb);

const UNAUTHORIZED = expect.objectContaining({ id: "unauthorized", message: expect.stringMatching(/\S/) });
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

interface Handoff {
  browser_url: string;
  cli_url: string;
  token: string;
  attemptId: string;
}

/** `POST /auth` exactly as `heroku login` sends it: no Accept, no Authorization. */
async function startLogin(description = "Heroku CLI login from build-box"): Promise<Handoff> {
  const res = await fetch(`${platform().apiUrl}/auth`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ description }),
    dispatcher: tlsAgent(),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as Omit<Handoff, "attemptId">;
  return { ...body, attemptId: body.cli_url.split("/").pop()! };
}

/** The CLI's long poll; resolves with the whole answer. */
async function poll(cliUrl: string, token: string) {
  const res = await fetch(platform().apiUrl + cliUrl, { headers: { Authorization: `Bearer ${token}` }, dispatcher: tlsAgent() });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, body: JSON.parse(text) };
}

/** Signs in a browser as `account` and answers the attempt's question. */
async function decide(account: TestAccount, handoff: Handoff, decision: "approve" | "deny", address = "192.0.2.10") {
  const browser = new DashboardClient({ "CF-Connecting-IP": address });
  expect((await browser.signIn(account.email, account.password)).status).toBe(303);
  const page = await browser.get(handoff.browser_url);
  expect(page.status).toBe(200);
  return browser.post(handoff.browser_url, { decision });
}

const attemptRow = async (id: string) => (await (await db()).select().from(loginAttempts).where(eq(loginAttempts.id, id)))[0]!;
const tokensOf = async (accountId: string) => (await db()).select().from(oauthAuthorizations).where(eq(oauthAuthorizations.accountId, accountId));

/** A poll token made with the platform's own key, with claims a test chooses; the attempt is told to expect its jti. */
async function forge(attemptId: string, claims: { aud?: string; iss?: string; exp?: number; purpose?: string; sub?: string }) {
  const jwk = JSON.parse(readFileSync(path.join(platform().home, "signing-key.jwk"), "utf8")) as JWK;
  const key = await importJWK(jwk, "EdDSA");
  const jti = randomUUID();
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ purpose: claims.purpose ?? "cli-login" })
    .setProtectedHeader({ alg: "EdDSA" })
    .setIssuer(claims.iss ?? "dynoplane")
    .setAudience(claims.aud ?? "dynoplane:cli-login")
    .setSubject(claims.sub ?? attemptId)
    .setIssuedAt(now - 5)
    .setExpirationTime(claims.exp ?? now + 300)
    .setJti(jti)
    .sign(key);
  await (await db())
    .update(loginAttempts)
    .set({ pollJtiHash: sha256(jti) })
    .where(eq(loginAttempts.id, attemptId));
  return token;
}

describe("POST /auth", () => {
  it("answers paths and a signed poll token bound to one attempt; only hashes are stored", async () => {
    const h = await startLogin();
    expect(h.browser_url).toMatch(/^\/dashboard\/cli-login\/[A-Za-z0-9_-]{43}$/);
    expect(h.cli_url).toMatch(/^\/auth\/cli\/[0-9a-f-]{36}$/);
    expect(decodeProtectedHeader(h.token)).toEqual({ alg: "EdDSA", kid: expect.any(String) });
    const claims = decodeJwt(h.token);
    expect(claims).toMatchObject({ iss: "dynoplane", aud: "dynoplane:cli-login", purpose: "cli-login", sub: h.attemptId });
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(typeof claims.jti).toBe("string");
    // The browser link shares no secret with the poll token.
    const browserId = h.browser_url.split("/").pop()!;
    expect(h.token).not.toContain(browserId);
    expect(h.browser_url).not.toContain(h.attemptId);
    const row = await attemptRow(h.attemptId);
    expect(row).toMatchObject({
      status: "pending",
      description: "Heroku CLI login from build-box",
      pollJtiHash: sha256(claims.jti!),
      browserIdHash: sha256(browserId),
    });
    expect(JSON.stringify(row)).not.toContain(browserId);
    expect(JSON.stringify(row)).not.toContain(claims.jti);
  });
});

describe("GET cli_url: the CLI's long poll", () => {
  it("answers 200 at once, waits, and hands over a new token once the browser approves", async () => {
    const account = await makeAccount();
    const h = await startLogin();
    const res = await fetch(platform().apiUrl + h.cli_url, { headers: { Authorization: `Bearer ${h.token}` }, dispatcher: tlsAgent() });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = res.text();
    expect((await decide(account, h, "approve")).status).toBe(200);
    const text = await body;
    expect(text).toMatch(/^\s+\{/);
    const token = JSON.parse(text).access_token as string;
    const me = await api("/account", { token });
    expect(me.body.email).toBe(account.email);
    const issued = (await tokensOf(account.id)).filter((t) => t.description === "Heroku CLI login from build-box");
    expect(issued).toHaveLength(1);
    expect(issued[0]!.isDefault).toBe(false);
    expect((await attemptRow(h.attemptId)).status).toBe("redeemed");
  });

  it("keeps the connection alive with whitespace, then reports a denial without issuing anything", { timeout: 60_000 }, async () => {
    const account = await makeAccount();
    const h = await startLogin();
    const res = await fetch(platform().apiUrl + h.cli_url, { headers: { Authorization: `Bearer ${h.token}` }, dispatcher: tlsAgent() });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    expect(decoder.decode((await reader.read()).value)).toMatch(/^\s+$/);
    const waited = Date.now();
    const keepalive = await reader.read();
    expect(decoder.decode(keepalive.value)).toMatch(/^\s+$/);
    // At the platform's interval (LOGIN_KEEPALIVE_S; 20 s by default), within the CLI's 60-second idle limit.
    expect(Date.now() - waited).toBeGreaterThan(Number(platform().workerVars.LOGIN_KEEPALIVE_S) * 1000 - 1_000);
    expect(Date.now() - waited).toBeLessThan(55_000);
    const before = await tokensOf(account.id);
    expect((await decide(account, h, "deny")).status).toBe(200);
    let rest = "";
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += decoder.decode(chunk.value);
    expect(JSON.parse(rest)).toEqual({ error: expect.stringMatching(/denied/) });
    expect(await tokensOf(account.id)).toEqual(before);
  });

  it("works once: a replayed poll token is refused, during the wait and after it", async () => {
    const account = await makeAccount();
    const h = await startLogin();
    const first = poll(h.cli_url, h.token);
    await new Promise((r) => setTimeout(r, 500));
    const during = await poll(h.cli_url, h.token);
    expect(during.status).toBe(401);
    expect(during.body).toEqual(UNAUTHORIZED);
    await decide(account, h, "approve");
    expect((await first).body.access_token).toMatch(/^dpl_/);
    const count = (await tokensOf(account.id)).length;
    const after = await poll(h.cli_url, h.token);
    expect(after.status).toBe(401);
    expect(after.body).toEqual(UNAUTHORIZED);
    expect(await tokensOf(account.id)).toHaveLength(count);
  });

  it("refuses forged, tampered, foreign and expired poll tokens, and issues nothing until the real one comes", async () => {
    const account = await makeAccount();
    const h = await startLogin();
    const other = await startLogin();
    await decide(account, h, "approve");
    const before = await tokensOf(account.id);
    const [head, payload, signature] = h.token.split(".") as [string, string, string];
    const flipped = signature.slice(0, -2) + (signature.endsWith("AA") ? "BB" : "AA");
    const claims = decodeJwt(h.token);
    const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
    const cases: Array<[string, string, string]> = [
      ["a bad signature", `${head}.${payload}.${flipped}`, h.cli_url],
      ["alg none", none, h.cli_url],
      ["the payload of another attempt under this signature", `${head}.${other.token.split(".")[1]}.${signature}`, h.cli_url],
      ["another attempt's genuine token", other.token, h.cli_url],
      ["no token at all", "", h.cli_url],
      ["an API token", account.token, h.cli_url],
    ];
    for (const [label, token, url] of cases) {
      const res = await poll(url, token);
      expect(res.status, label).toBe(401);
      expect(res.body, label).toEqual(UNAUTHORIZED);
    }
    expect((await attemptRow(h.attemptId)).polledAt).toBeNull();
    // Signed with the platform's own key and naming the right jti, but with one claim wrong.
    for (const [label, wrong] of [
      ["another audience", { aud: "dynoplane:log-session" }],
      ["another issuer", { iss: "someone-else" }],
      ["another purpose", { purpose: "route" }],
      ["an expired token", { exp: Math.floor(Date.now() / 1000) - 60 }],
    ] as const) {
      const res = await poll(h.cli_url, await forge(h.attemptId, wrong));
      expect(res.status, label).toBe(401);
      expect(res.body, label).toEqual(UNAUTHORIZED);
    }
    expect(await tokensOf(account.id)).toEqual(before);
    expect((await attemptRow(h.attemptId)).status).toBe("approved");
    // With every claim right, the same key's token collects the approval: the refusals were about the claims.
    const ok = await poll(h.cli_url, await forge(h.attemptId, {}));
    expect(ok.body.access_token).toMatch(/^dpl_/);
    expect(claims.sub).toBe(h.attemptId);
  });

  it("refuses an expired attempt even with its genuine token, and the browser cannot approve it", async () => {
    const account = await makeAccount();
    const h = await startLogin();
    await (await db())
      .update(loginAttempts)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(loginAttempts.id, h.attemptId));
    const browser = new DashboardClient({ "CF-Connecting-IP": "192.0.2.11" });
    await browser.signIn(account.email, account.password);
    expect((await browser.get(h.browser_url)).status).toBe(410);
    expect((await browser.post(h.browser_url, { decision: "approve" })).status).toBe(410);
    expect((await attemptRow(h.attemptId)).status).toBe("pending");
    const res = await poll(h.cli_url, h.token);
    expect(res.status).toBe(401);
    expect(res.body).toEqual(UNAUTHORIZED);
    expect((await tokensOf(account.id)).map((t) => t.description)).toEqual(["test"]);
  });
});

describe("the browser link", () => {
  it("sends a visitor without a session to sign in (with a link to sign up), and a sessionless approval changes nothing", async () => {
    const h = await startLogin();
    const browser = new DashboardClient();
    const page = await browser.get(h.browser_url);
    expect(page.status).toBe(303);
    expect(page.location).toBe(`/dashboard/login?next=${encodeURIComponent(h.browser_url)}`);
    const signIn = await browser.get(page.location!);
    expect(signIn.text).toContain(`href="/dashboard/signup?next=${encodeURIComponent(h.browser_url)}"`);
    // A valid CSRF token of the anonymous browser, but no session: no decision.
    const post = await browser.post(h.browser_url, { decision: "approve" });
    expect(post.status).toBe(303);
    expect(post.location).toMatch(/^\/dashboard\/login/);
    expect((await attemptRow(h.attemptId)).status).toBe("pending");
  });

  it("refuses an approval without the page's CSRF token or from another origin", async () => {
    const account = await makeAccount();
    const h = await startLogin();
    const browser = new DashboardClient({ "CF-Connecting-IP": "192.0.2.13" });
    await browser.signIn(account.email, account.password);
    await browser.get(h.browser_url);
    for (const opts of [{ csrf: null }, { csrf: "f".repeat(64) }, { origin: "https://evil.example" }, { origin: null }]) {
      const res = await browser.post(h.browser_url, { decision: "approve" }, opts);
      expect(res.status, JSON.stringify(opts)).toBe(403);
    }
    expect((await attemptRow(h.attemptId)).status).toBe("pending");
    expect((await browser.post(h.browser_url, { decision: "approve" })).status).toBe(200);
    expect((await poll(h.cli_url, h.token)).body.access_token).toMatch(/^dpl_/);
  });

  it("asks about the CLI's machine and cannot be answered twice", async () => {
    const account = await makeAccount();
    const h = await startLogin("Heroku CLI login from laptop-42");
    const browser = new DashboardClient({ "CF-Connecting-IP": "192.0.2.12" });
    await browser.signIn(account.email, account.password);
    const page = await browser.get(h.browser_url);
    expect(page.text).toContain("Log in to the CLI on laptop-42?");
    expect(page.text).toMatch(/<button[^>]*>Approve<\/button>/);
    expect(page.text).toMatch(/<button[^>]*>Deny<\/button>/);
    expect((await browser.post(h.browser_url, { decision: "deny" })).status).toBe(200);
    expect((await browser.post(h.browser_url, { decision: "approve" })).status).toBe(410);
    expect((await attemptRow(h.attemptId)).status).toBe("denied");
  });
});
