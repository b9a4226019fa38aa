import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { apps, dynos, releases } from "../../src/db/schema/index.ts";
import { IDLE_AFTER_MS, sleepIdleApps } from "../../src/services/eco/sleep.ts";
import { api } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, makeApp } from "../support/factories.ts";

afterAll(closeDb);

/** An eco app with one web dyno that should be up, last used at `lastRequestAt` (no host needed). */
async function ecoApp(lastRequestAt: Date) {
  const owner = await makeAccount();
  const app = await makeApp(owner, appName("clock"));
  const [release] = await (await db()).select().from(releases).where(eq(releases.appId, app.id));
  await (await db()).update(apps).set({ lastRequestAt, processTier: "eco" }).where(eq(apps.id, app.id));
  await (await db())
    .insert(dynos)
    .values({ appId: app.id, releaseId: release!.id, name: "web.1", type: "web", command: "node server.js", size: "Eco", state: "up" });
  return { owner, app };
}

const dynoOf = async (appId: string) => (await (await db()).select().from(dynos).where(eq(dynos.appId, appId)))[0]!;

describe("sleeping idle eco apps, on an injected clock", () => {
  it("leaves an app alone before 30 idle minutes and puts it to sleep after", async () => {
    const last = new Date(Date.UTC(2026, 0, 1, 12, 0, 0));
    const { owner, app } = await ecoApp(last);

    await sleepIdleApps(await db(), new Date(last.getTime() + IDLE_AFTER_MS - 60_000));
    expect(await dynoOf(app.id)).toMatchObject({ desired: "up", state: "up" });

    const { changes } = await sleepIdleApps(await db(), new Date(last.getTime() + IDLE_AFTER_MS + 60_000));
    const after = await dynoOf(app.id);
    expect(after).toMatchObject({ desired: "sleeping", state: "idle" });
    expect(changes.stop.map((s) => s.dynoId)).toContain(after.id);
    // `heroku ps` shows it idle.
    const listed = await api(`/apps/${app.name}/dynos`, { token: owner.token });
    expect(listed.body.map((d: any) => [d.name, d.state])).toEqual([["web.1", "idle"]]);

    // Running the job again changes nothing more.
    const again = await sleepIdleApps(await db(), new Date(last.getTime() + IDLE_AFTER_MS + 120_000));
    expect(again.changes.stop.map((s) => s.dynoId)).not.toContain(after.id);
  });

  it("never sleeps an app on paid dynos", async () => {
    const last = new Date(Date.UTC(2026, 0, 1, 12, 0, 0));
    const { app } = await ecoApp(last);
    await (await db()).update(apps).set({ processTier: "production" }).where(eq(apps.id, app.id));
    await sleepIdleApps(await db(), new Date(last.getTime() + 10 * IDLE_AFTER_MS));
    expect(await dynoOf(app.id)).toMatchObject({ desired: "up" });
  });
});
