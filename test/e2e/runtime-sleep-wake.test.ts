import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { apps } from "../../src/db/schema/index.ts";
import { api, fireCron } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { appProcesses, deploySlug, destroyApp, listDynos, visit, waitFor, waitForAnswer, waitForUp } from "../support/slugs.ts";

// Eco apps sleep after 30 minutes without a request: the scheduled job stops their dynos,
// which then read `idle`, and the next request wakes the app. Concurrent requests share
// one wake, so exactly one new process starts.

/** Pretends the app's last routed request was `minutes` ago. */
async function lastRequestAgo(appId: string, minutes: number) {
  await (await db())
    .update(apps)
    .set({ lastRequestAt: new Date(Date.now() - minutes * 60_000) })
    .where(eq(apps.id, appId));
}

afterAll(closeDb);

describe("sleeping and waking eco apps", { timeout: 180_000 }, () => {
  let user: TestAccount;
  const names: string[] = [];

  afterAll(async () => {
    for (const name of names) await destroyApp(user.token, name);
  });

  /** A deployed app with web.1 up and answering; returns it with the pid that answered. */
  const running = async () => {
    user ??= await makeAccount();
    const app = await makeApp(user);
    names.push(app.name);
    await deploySlug(user.token, app.name);
    const answer = await waitForAnswer(app.name);
    await waitForUp(user.token, app.name, ["web.1"]);
    return { ...app, pid: answer.pid };
  };

  it("sleeps only idle eco apps, and wakes a sleeping one once for ten concurrent requests", async () => {
    const idle = await running();
    const busy = await running();
    const paid = await running();
    const resized = await api(`/apps/${paid.name}/formation/web`, { method: "PATCH", token: user.token, body: { size: "Basic" } });
    expect(resized.status).toBe(200);
    expect((await api(`/apps/${paid.name}`, { token: user.token })).body.process_tier).toBe("production");
    await waitForUp(user.token, paid.name, ["web.1"]);
    const paidPid = (await waitForAnswer(paid.name, (j) => j.pid !== paid.pid)).pid;
    // The resize replaced web.1: the old process ends once the new one has taken over (the handoff).
    await waitFor("the resized dyno's process alone", () => {
      const pids = appProcesses(paid.name);
      return pids.length === 1 && pids[0] === paidPid;
    });

    await lastRequestAgo(idle.id, 31);
    await lastRequestAgo(busy.id, 5);
    await lastRequestAgo(paid.id, 31);
    await fireCron();

    expect((await listDynos(user.token, idle.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "idle"]]);
    await waitFor("the idle app's process to stop", () => appProcesses(idle.name).length === 0);
    // A recently used eco app and an app on paid dynos keep running.
    expect((await listDynos(user.token, busy.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);
    expect((await listDynos(user.token, paid.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);
    expect(appProcesses(busy.name)).toEqual([busy.pid]);
    expect(appProcesses(paid.name)).toEqual([paidPid]);

    // Ten requests arrive at once while the app sleeps: all are answered by one new dyno process.
    const answers = await Promise.all(Array.from({ length: 10 }, () => visit(idle.name)));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    const pids = new Set(answers.map((a) => a.json!.pid));
    expect(pids.size).toBe(1);
    const [woken] = [...pids];
    expect(woken).not.toBe(idle.pid);
    expect(answers.every((a) => a.json!.dyno === "web.1")).toBe(true);
    expect(appProcesses(idle.name)).toEqual([woken]);
    expect((await listDynos(user.token, idle.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);

    // Waking counts as use: the next run of the job leaves the app awake.
    await fireCron();
    expect((await listDynos(user.token, idle.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);
    expect((await visit(idle.name)).json!.pid).toBe(woken);
  });
});
