import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { browserSessions, oauthAuthorizations } from "../../src/db/schema/index.ts";
import { MAX_ADDRESS_FAILURES } from "../../src/services/access/sign-in-throttle.ts";
import { api } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";

afterAll(closeDb);

const SESSION = "__Host-dp_session";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
let addresses = 0;
/** A client address of its own (Cloudflare's CF-Connecting-IP), so sign-in counters do not mix between tests. */
const freshAddress = () => `198.51.100.${++addresses}`;

async function signedIn(account: TestAccount, address = freshAddress()) {
  const browser = new DashboardClient({ "CF-Connecting-IP": address });
  expect((await browser.signIn(account.email, account.password)).status).toBe(303);
  return browser;
}

/** The error a sign-in page shows. */
const formError = (html: string) => /id="form-error">([^<]*)</.exec(html)?.[1];

describe("browser sessions", () => {
  it("live in a __Host- cookie that is HttpOnly, Secure and SameSite=Lax; only a hash is stored", async () => {
    const account = await makeAccount();
    const browser = new DashboardClient({ "CF-Connecting-IP": freshAddress() });
    await browser.get("/dashboard/login");
    const res = await browser.post("/dashboard/login", { email: account.email, password: account.password });
    expect(res.status).toBe(303);
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION}=`))!;
    expect(cookie).toMatch(/; Path=\//);
    expect(cookie).toMatch(/; HttpOnly/);
    expect(cookie).toMatch(/; Secure/);
    expect(cookie).toMatch(/; SameSite=Lax/);
    const secret = decodeURIComponent(browser.cookies.get(SESSION)!).split(".")[0]!;
    const rows = await (await db()).select().from(browserSessions).where(eq(browserSessions.accountId, account.id));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.secretHash).toBe(sha256(secret));
    expect(JSON.stringify(rows)).not.toContain(secret);
  });

  it("are refused when the cookie is tampered with, and revoked server-side by signing out", async () => {
    const account = await makeAccount();
    const browser = await signedIn(account);
    expect((await browser.get("/dashboard/apps")).status).toBe(200);
    const cookie = browser.cookies.get(SESSION)!;

    const forged = new DashboardClient();
    forged.cookies.set(
      SESSION,
      cookie.replace(/^./, (ch) => (ch === "A" ? "B" : "A")),
    );
    expect((await forged.get("/dashboard/apps")).status).toBe(303);

    await browser.get("/dashboard/account");
    expect((await browser.post("/dashboard/logout", {})).status).toBe(303);
    // The old cookie, replayed after sign-out, no longer signs anyone in.
    const replay = new DashboardClient();
    replay.cookies.set(SESSION, cookie);
    const res = await replay.get("/dashboard/apps");
    expect(res.status).toBe(303);
    expect(res.location).toMatch(/^\/dashboard\/login/);
    const [row] = await (await db()).select().from(browserSessions).where(eq(browserSessions.accountId, account.id));
    expect(row!.revokedAt).toBeInstanceOf(Date);
  });
});

describe("every form post needs our origin and the page's CSRF token", () => {
  it("refuses posts without a token, with another session's token, or from another origin, changing nothing", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { KEEP: "me" } });
    const browser = await signedIn(owner);
    const intruder = await signedIn(await makeAccount());
    await browser.get(`/dashboard/apps/${app.name}/settings`);
    await intruder.get("/dashboard/apps");
    const foreignToken = intruder.csrf!;
    expect(foreignToken).not.toBe(browser.csrf);

    const attempts: Array<[string, string, Record<string, string>, { csrf?: string | null; origin?: string | null }]> = [
      ["create an app without a token", "/dashboard/apps", { name: `csrf-${Date.now().toString(36)}` }, { csrf: null }],
      ["set a config var with another session's token", `/dashboard/apps/${app.name}/config`, { key: "KEEP", value: "stolen" }, { csrf: foreignToken }],
      ["remove a config var from another origin", `/dashboard/apps/${app.name}/config/remove`, { key: "KEEP" }, { origin: "https://evil.example" }],
      ["delete the app without an Origin", `/dashboard/apps/${app.name}/delete`, { confirm: app.name }, { origin: null }],
      ["regenerate the API key with a made-up token", "/dashboard/account/api-key", {}, { csrf: "0".repeat(64) }],
      ["sign out without a token", "/dashboard/logout", {}, { csrf: null }],
    ];
    const keysBefore = await (await db()).select().from(oauthAuthorizations).where(eq(oauthAuthorizations.accountId, owner.id));
    for (const [label, path, fields, opts] of attempts) {
      const res = await browser.post(path, fields, opts);
      expect(res.status, label).toBe(403);
      expect(res.text, label).toContain("This form has expired");
    }
    expect((await api(`/apps/${app.name}/config-vars`, { token: owner.token })).body).toEqual({ KEEP: "me" });
    expect((await api("/apps", { token: owner.token })).body.map((a: { name: string }) => a.name)).toEqual([app.name]);
    expect(await (await db()).select().from(oauthAuthorizations).where(eq(oauthAuthorizations.accountId, owner.id))).toEqual(keysBefore);
    // Still signed in, and the same post with the token goes through.
    const ok = await browser.post(`/dashboard/apps/${app.name}/config`, { key: "KEEP", value: "changed" });
    expect(ok.status).toBe(303);
    expect((await api(`/apps/${app.name}/config-vars`, { token: owner.token })).body).toEqual({ KEEP: "changed" });
  });

  it("guards the sign-in form too, so nobody can sign a browser into their account", async () => {
    const account = await makeAccount();
    const browser = new DashboardClient({ "CF-Connecting-IP": freshAddress() });
    await browser.get("/dashboard/login");
    const res = await browser.post("/dashboard/login", { email: account.email, password: account.password }, { csrf: null });
    expect(res.status).toBe(403);
    expect(browser.cookies.has(SESSION)).toBe(false);
  });

  it("keeps apps apart: another account's app is refused even with a valid session and token", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const intruder = await signedIn(await makeAccount());
    expect((await intruder.get(`/dashboard/apps/${app.name}/settings`)).status).toBe(403);
    await intruder.get("/dashboard/apps");
    const res = await intruder.post(`/dashboard/apps/${app.name}/delete`, { confirm: app.name });
    expect(res.status).toBe(403);
    expect((await api(`/apps/${app.name}`, { token: owner.token })).status).toBe(200);
  });
});

describe("sign-in is rate limited and says nothing about which emails exist", () => {
  it("locks an account from an address after 10 failures there, with the same answers as for an unknown email; its owner elsewhere still signs in", async () => {
    const account = await makeAccount();
    const unknown = `nobody-${Date.now().toString(36)}@example.com`;
    const guesser = freshAddress();
    for (const email of [account.email, unknown]) {
      const answers: string[] = [];
      for (let i = 0; i < 10; i++) {
        const browser = new DashboardClient({ "CF-Connecting-IP": guesser });
        await browser.get("/dashboard/login");
        const res = await browser.post("/dashboard/login", { email, password: `wrong-${i}` });
        expect(res.status).toBe(401);
        answers.push(formError(res.text)!);
      }
      expect(new Set(answers).size).toBe(1);
      expect(answers[0]).toBe("That email and password do not match an account.");
    }
    // From the guessing address the right password no longer helps, and the lockout reads the same for both emails.
    const browser = new DashboardClient({ "CF-Connecting-IP": guesser });
    const locked = await browser.signIn(account.email, account.password);
    expect(locked.status).toBe(429);
    expect(browser.cookies.has(SESSION)).toBe(false);
    const lockedUnknown = await new DashboardClient({ "CF-Connecting-IP": guesser }).signIn(unknown, account.password);
    expect(lockedUnknown.status).toBe(429);
    expect(formError(lockedUnknown.text)).toBe(formError(locked.text));
    const rows = await (await db()).select().from(browserSessions).where(eq(browserSessions.accountId, account.id));
    expect(rows).toEqual([]);
    // The owner, from an address of their own, is not locked out by someone else's guesses.
    expect((await new DashboardClient({ "CF-Connecting-IP": freshAddress() }).signIn(account.email, account.password)).status).toBe(303);
  });

  it(`locks a client address after ${MAX_ADDRESS_FAILURES} failures across any emails`, async () => {
    const address = freshAddress();
    for (let i = 0; i < MAX_ADDRESS_FAILURES; i++) {
      const res = await new DashboardClient({ "CF-Connecting-IP": address }).signIn(`guess-${i}-${Date.now()}@example.com`, "password1");
      expect(res.status).toBe(401);
    }
    const account = await makeAccount();
    expect((await new DashboardClient({ "CF-Connecting-IP": address }).signIn(account.email, account.password)).status).toBe(429);
    expect((await new DashboardClient({ "CF-Connecting-IP": freshAddress() }).signIn(account.email, account.password)).status).toBe(303);
  }, 120_000);
});
