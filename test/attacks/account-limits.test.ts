import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { accountLimits, addons, apps, dynos, formations } from "../../src/db/schema/index.ts";
import { DEFAULT_LIMITS } from "../../src/services/access/account-limits.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { deploySlug, destroyApp, waitForUp, webProcessTypes } from "../support/slugs.ts";

afterAll(closeDb);

const run = promisify(execFile);

/** An operator's limits for one account, as `dynoplane accounts:limits` writes them. */
async function limit(accountId: string, values: Partial<typeof accountLimits.$inferInsert>) {
  await (await db())
    .insert(accountLimits)
    .values({ accountId, ...values })
    .onConflictDoUpdate({ target: accountLimits.accountId, set: values });
}

describe("one account against everyone else's room", () => {
  it("fifty one-off dynos of one account leave another account's web dyno placed and up", async () => {
    const greedy = await makeAccount();
    const other = await makeAccount();
    const hog = await makeApp(greedy);
    const victim = await makeApp(other);
    try {
      await deploySlug(greedy.token, hog.name, { web: `node server.js ${hog.name}` });
      await api(`/apps/${hog.name}/formation/web`, { method: "PATCH", token: greedy.token, body: { quantity: 0 } });
      const answers = [];
      for (let i = 0; i < 50; i++) {
        answers.push(
          await api(`/apps/${hog.name}/dynos`, {
            method: "POST",
            token: greedy.token,
            body: { command: "sleep 600", attach: false, size: "standard-2x" },
          }),
        );
      }
      // Defence: checkOneOffLimits (one-off dynos at once, and the account's share of the fleet's memory).
      const started = answers.filter((a) => a.status === 201).length;
      expect(started).toBeLessThanOrEqual(DEFAULT_LIMITS.oneOffDynos);
      expect(started).toBeGreaterThan(0);
      const refused = answers.filter((a) => a.status !== 201);
      expect(refused.length).toBe(50 - started);
      for (const r of refused) {
        expect(r.status).toBe(422);
        expect(r.body).toMatchObject({ id: "invalid_params", message: expect.stringMatching(/^(Cannot run more than \d+ one-off dynos|This would commit)/) });
      }
      const rows = await (await db()).select({ id: dynos.id }).from(dynos).where(eq(dynos.appId, hog.id));
      expect(rows.length).toBe(started);
      // The other account deploys as it always could.
      await deploySlug(other.token, victim.name, webProcessTypes(victim.name));
      await waitForUp(other.token, victim.name, ["web.1"]);
    } finally {
      await destroyApp(greedy.token, hog.name);
      await destroyApp(other.token, victim.name);
    }
  });

  it("refuses an app, an add-on, or a scale beyond the account's limits with Heroku's kind of message, and changes nothing", async () => {
    const account = await makeAccount();
    const first = await makeApp(account);
    try {
      await limit(account.id, { apps: 1, addons: 0, dynosPerApp: 2 });
      // Defence: checkAppLimit.
      const name = appName();
      const app = await api("/apps", { method: "POST", token: account.token, body: { name } });
      expect(app.status, app.text).toBe(422);
      expect(app.body.message).toMatch(/^You've reached the limit of 1 apps for this account/);
      expect(await (await db()).select().from(apps).where(eq(apps.name, name))).toEqual([]);
      // Defence: checkAddonLimit.
      const addon = await api(`/apps/${first.name}/addons`, { method: "POST", token: account.token, body: { plan: "heroku-postgresql:essential-0" } });
      expect(addon.status, addon.text).toBe(422);
      expect(addon.body.message).toMatch(/^You've reached the limit of 0 add-ons for this account/);
      expect(await (await db()).select().from(addons).where(eq(addons.appId, first.id))).toEqual([]);
      // Defence: checkFormationLimits.
      await deploySlug(account.token, first.name, { web: `node server.js ${first.name}`, worker: "node worker.js" });
      const scale = await api(`/apps/${first.name}/formation`, {
        method: "PATCH",
        token: account.token,
        body: {
          updates: [
            { type: "web", quantity: 2, size: "standard-1x" },
            { type: "worker", quantity: 1, size: "standard-1x" },
          ],
        },
      });
      expect(scale.status, scale.text).toBe(422);
      expect(scale.body.message).toMatch(/^Cannot scale to more than 2 dynos on one app/);
      const formation = await (await db())
        .select({ type: formations.type, quantity: formations.quantity })
        .from(formations)
        .where(eq(formations.appId, first.id));
      expect(formation.find((f) => f.type === "worker")?.quantity).toBe(0);
      // Within them, all is as before.
      const fits = await api(`/apps/${first.name}/formation`, {
        method: "PATCH",
        token: account.token,
        body: {
          updates: [
            { type: "web", quantity: 1, size: "standard-1x" },
            { type: "worker", quantity: 1, size: "standard-1x" },
          ],
        },
      });
      expect(fits.status, fits.text).toBe(200);
    } finally {
      await destroyApp(account.token, first.name);
    }
  });
});

describe("dynoplane accounts:limits", () => {
  it("shows an account's limits, sets its own, and puts them back to the platform's", async () => {
    const account = await makeAccount();
    const env = { ...process.env, DATABASE_URL: platform().databaseUrl };
    const cli = (...args: string[]) => run(process.execPath, ["bin/dynoplane.js", "accounts:limits", account.email, ...args], { env }).catch((err) => err);
    const shown = await cli();
    expect(shown.stdout).toContain(`${account.email}'s limits:`);
    expect(shown.stdout).toMatch(/apps\s+100\n/);
    const set = await cli("--apps", "0", "--memory-share", "0.25");
    expect(set.stdout).toMatch(/apps\s+0\n/);
    expect(set.stdout).toMatch(/memory-share\s+0\.25\n/);
    const refused = await api("/apps", { method: "POST", token: account.token, body: { name: appName() } });
    expect(refused.status, refused.text).toBe(422);
    const bad = await cli("--apps", "lots");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--apps must be a whole number or "default"/);
    const reset = await cli("--reset");
    expect(reset.stdout).toMatch(/apps\s+100\n/);
    const app = await api("/apps", { method: "POST", token: account.token, body: { name: appName() } });
    expect(app.status, app.text).toBe(201);
    await destroyApp(account.token, app.body.name);
  });
});
