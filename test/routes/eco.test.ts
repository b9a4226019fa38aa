import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { actAt } from "../../src/cron/clock.ts";
import { accounts, appFeatures, dynos, dynoUsage, keepAlive, releases } from "../../src/db/schema/index.ts";
import { monthStart } from "../../src/services/eco/eco.ts";
import { api } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";

afterAll(closeDb);

const HOUR = 3600;

/** A web dyno row for an app that has a release (no host needed: the rows are what is metered). */
async function dynoFor(appId: string, size = "Eco", name = "web.1") {
  const [release] = await (await db()).select().from(releases).where(eq(releases.appId, appId));
  const [row] = await (await db())
    .insert(dynos)
    .values({ appId, releaseId: release!.id, name, type: name.split(".")[0]!, command: "node server.js", size })
    .returning();
  return row!;
}

describe("the dyno usage history", () => {
  it("opens a stretch when a dyno is up and closes it when it sleeps, stops, crashes, restarts or goes", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const d = await dynoFor(app.id);
    const conn = await db();
    const at = (iso: string) => actAt(conn, new Date(iso));
    const stretches = async () =>
      (await conn.select().from(dynoUsage).where(eq(dynoUsage.dynoId, d.id))).map((u) => [u.startedAt.toISOString(), u.endedAt?.toISOString() ?? null]);
    try {
      await at("2031-05-01T10:00:00Z");
      await conn.update(dynos).set({ state: "up" }).where(eq(dynos.id, d.id));
      // Reported up again: nothing new.
      await at("2031-05-01T10:00:03Z");
      await conn.update(dynos).set({ state: "up" }).where(eq(dynos.id, d.id));
      await at("2031-05-01T11:00:00Z");
      await conn.update(dynos).set({ desired: "sleeping", state: "idle" }).where(eq(dynos.id, d.id));
      await at("2031-05-01T12:00:00Z");
      await conn.update(dynos).set({ desired: "up", state: "up" }).where(eq(dynos.id, d.id));
      await at("2031-05-01T12:30:00Z");
      // A restart (a new instance) ends the stretch even before the host says so.
      await conn.update(dynos).set({ instance: sql`gen_random_uuid()` }).where(eq(dynos.id, d.id));
      await at("2031-05-01T12:45:00Z");
      await conn.update(dynos).set({ state: "crashed" }).where(eq(dynos.id, d.id));
      await at("2031-05-01T13:00:00Z");
      await conn.update(dynos).set({ state: "up" }).where(eq(dynos.id, d.id));
      await at("2031-05-01T13:15:30Z");
      await conn.delete(dynos).where(eq(dynos.id, d.id));
      expect((await stretches()).sort()).toEqual([
        ["2031-05-01T10:00:00.000Z", "2031-05-01T11:00:00.000Z"],
        ["2031-05-01T12:00:00.000Z", "2031-05-01T12:30:00.000Z"],
        ["2031-05-01T12:30:00.000Z", "2031-05-01T12:45:00.000Z"],
        ["2031-05-01T13:00:00.000Z", "2031-05-01T13:15:30.000Z"],
      ]);
    } finally {
      await conn.execute(sql`select set_config('dynoplane.clock', '', false)`);
    }
  });
});

describe("GET /accounts/{id}/actions/get-quota", () => {
  it("answers the pool and this month's eco use in seconds, per app, for one's own account only", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const other = await makeApp(owner);
    const conn = await db();
    const start = monthStart(new Date());
    // 2h 30m of an eco dyno this month, 1h of a Basic one (not counted), 5h last month (not counted).
    const rows = [
      { appId: app.id, size: "Eco", startedAt: new Date(start.getTime() + 1000), endedAt: new Date(start.getTime() + 1000 + 2.5 * HOUR * 1000) },
      { appId: other.id, size: "Basic", startedAt: new Date(start.getTime() + 1000), endedAt: new Date(start.getTime() + 1000 + HOUR * 1000) },
      { appId: other.id, size: "Eco", startedAt: new Date(start.getTime() - 5 * HOUR * 1000), endedAt: start },
    ];
    for (const r of rows) await conn.insert(dynoUsage).values({ ...r, accountId: owner.id, dynoId: crypto.randomUUID(), dynoName: "web.1" });
    // And a dyno up right now, for a minute so far.
    await conn.insert(dynoUsage).values({
      accountId: owner.id,
      appId: other.id,
      dynoId: crypto.randomUUID(),
      dynoName: "web.1",
      size: "Eco",
      startedAt: new Date(Date.now() - 60_000),
    });

    const quota = await api(`/accounts/${owner.id}/actions/get-quota`, {
      token: owner.token,
      headers: { Accept: "application/vnd.heroku+json; version=3.account-quotas" },
    });
    expect(quota.status).toBe(200);
    expect(quota.body.account_quota).toBe(550 * HOUR);
    const byApp = Object.fromEntries(quota.body.apps.map((a: { app_uuid: string; quota_used: number }) => [a.app_uuid, a.quota_used]));
    expect(byApp[app.id]).toBe(2.5 * HOUR);
    expect(byApp[other.id]).toBeGreaterThanOrEqual(60);
    expect(byApp[other.id]).toBeLessThan(120);
    expect(quota.body.quota_used).toBe(byApp[app.id] + byApp[other.id]);
    expect((await api("/account/actions/get-quota", { token: owner.token })).body.account_quota).toBe(550 * HOUR);
    expect((await api(`/accounts/${owner.email}/actions/get-quota`, { token: owner.token })).status).toBe(200);

    // A verified account has the larger pool.
    await conn.update(accounts).set({ verified: true }).where(eq(accounts.id, owner.id));
    expect((await api(`/accounts/~/actions/get-quota`, { token: owner.token })).body.account_quota).toBe(1000 * HOUR);

    // Another account's quota is not found, whoever asks for it.
    const stranger = await makeAccount();
    const theirs = await api(`/accounts/${owner.id}/actions/get-quota`, { token: stranger.token });
    expect(theirs.status).toBe(404);
    expect(theirs.body).toMatchObject({ id: "not_found" });
    expect((await api(`/accounts/${owner.email}/actions/get-quota`, { token: stranger.token })).status).toBe(404);
  });
});

describe("/apps/{app}/features", () => {
  it("lists keep-alive, shows it, and turns it on and off, saying so in the app's log", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const listed = await api(`/apps/${app.name}/features`, { token: owner.token });
    expect(listed.status).toBe(200);
    expect(listed.body.map((f: { name: string; enabled: boolean; state: string }) => [f.name, f.enabled, f.state])).toEqual([
      ["keep-alive", false, "general"],
      ["log-runtime-metrics", false, "beta"],
    ]);
    const info = await api(`/apps/${app.name}/features/${listed.body[0].id}`, { token: owner.token });
    expect(info.body.name).toBe("keep-alive");

    const on = await api(`/apps/${app.name}/features/keep-alive`, { method: "PATCH", token: owner.token, body: { enabled: true } });
    expect(on.status).toBe(200);
    expect(on.body.enabled).toBe(true);
    const conn = await db();
    expect(await conn.select().from(keepAlive).where(eq(keepAlive.appId, app.id))).toHaveLength(1);
    const off = await api(`/apps/${app.name}/features/keep-alive`, { method: "PATCH", token: owner.token, body: { enabled: false } });
    expect(off.body.enabled).toBe(false);
    const [row] = await conn.select().from(appFeatures).where(eq(appFeatures.appId, app.id));
    expect(row!.enabled).toBe(false);
  });

  it("refuses unknown features, bad bodies, and other accounts' apps, changing nothing", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const unknown = await api(`/apps/${app.name}/features/preboot`, { method: "PATCH", token: owner.token, body: { enabled: true } });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ id: "not_found" });
    const bad = await api(`/apps/${app.name}/features/keep-alive`, { method: "PATCH", token: owner.token, body: { enabled: "yes" } });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({ id: "invalid_params" });
    const extra = await api(`/apps/${app.name}/features/keep-alive`, {
      method: "PATCH",
      token: owner.token,
      body: { enabled: true, url: "https://example.com" },
    });
    expect(extra.status).toBe(422);

    // A hostile tenant cannot turn keep-alive on for someone else's app.
    const intruder = await makeAccount();
    const theirs = await api(`/apps/${app.name}/features/keep-alive`, { method: "PATCH", token: intruder.token, body: { enabled: true } });
    expect(theirs.status).toBe(403);
    expect((await api(`/apps/${app.name}/features`, { token: intruder.token })).status).toBe(403);
    expect(await (await db()).select().from(appFeatures).where(eq(appFeatures.appId, app.id))).toEqual([]);
  });
});

describe("the dashboard's keep-alive and eco hours", () => {
  it("turns keep-alive on with a fixed bedtime from the Resources tab, and shows the account's hours", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const browser = new DashboardClient({ "CF-Connecting-IP": "198.51.100.201" });
    expect((await browser.signIn(owner.email, owner.password)).status).toBe(303);
    const page = await browser.get(`/dashboard/apps/${app.name}/resources`);
    expect(page.text).toContain('id="keep-alive-heading"');
    const saved = await browser.post(`/dashboard/apps/${app.name}/keep-alive`, { enabled: "on", bedtime: "22" });
    expect(saved.status).toBe(303);
    const conn = await db();
    expect((await conn.select().from(appFeatures).where(eq(appFeatures.appId, app.id)))[0]!.enabled).toBe(true);
    expect((await conn.select().from(keepAlive).where(eq(keepAlive.appId, app.id)))[0]!.bedtimeStartHour).toBe(22);
    const after = await browser.get(`/dashboard/apps/${app.name}/resources`);
    expect(after.text).toContain('<option value="22" selected="">');

    // A bedtime that is no hour changes nothing.
    const bad = await browser.post(`/dashboard/apps/${app.name}/keep-alive`, { enabled: "off", bedtime: "25" });
    expect(bad.status).toBe(303);
    expect((await conn.select().from(appFeatures).where(eq(appFeatures.appId, app.id)))[0]!.enabled).toBe(true);

    const account = await browser.get("/dashboard/account");
    expect(account.text).toContain("Eco dyno hours");
    expect(account.text).toMatch(/Pool this month<\/dt>\s*<dd>550h 0m/);
    expect(account.text).toContain(app.name);

    // Another account's session cannot switch it.
    const intruder = await makeAccount();
    const other = new DashboardClient({ "CF-Connecting-IP": "198.51.100.202" });
    expect((await other.signIn(intruder.email, intruder.password)).status).toBe(303);
    await other.get("/dashboard/apps");
    const refused = await other.post(`/dashboard/apps/${app.name}/keep-alive`, { enabled: "off", bedtime: "auto" });
    expect(refused.status).not.toBe(200);
    expect((await conn.select().from(appFeatures).where(eq(appFeatures.appId, app.id)))[0]!.enabled).toBe(true);
  });
});

describe("an account whose eco hours are spent", () => {
  it("is told why its eco app sleeps, on every heroku ps, until the month ends", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const until = new Date(Date.UTC(2099, 0, 1));
    await (await db()).update(accounts).set({ ecoExhaustedUntil: until }).where(eq(accounts.id, owner.id));
    const listed = await api(`/apps/${app.name}/dynos`, { token: owner.token });
    expect(listed.status).toBe(200);
    expect(listed.headers.get("warning-message")).toBe("Eco dyno hours quota exhausted: eco dynos sleep until 2099-01-01 00:00 UTC");
    // Once the month is over, nothing is said.
    await (await db())
      .update(accounts)
      .set({ ecoExhaustedUntil: new Date(Date.now() - 1000) })
      .where(eq(accounts.id, owner.id));
    expect((await api(`/apps/${app.name}/dynos`, { token: owner.token })).headers.get("warning-message")).toBeNull();
  });
});
