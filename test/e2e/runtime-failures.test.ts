import { and, eq } from "drizzle-orm";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { dynos } from "../../src/db/schema/index.ts";
import { platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { appProcesses, deploySlug, destroyApp, listDynos, processAlive, visit, waitFor, waitForAnswer, waitForUp } from "../support/slugs.ts";

// How the platform treats dynos that die, never boot, or answer too slowly: the agent
// restarts what crashed, kills a web process that does not bind $PORT in time (R10; the
// test platform allows 10 s, BOOT_TIMEOUT_S), and the router gives up on a request after
// its limit (H12; the test platform's ROUTER_TIMEOUT_S, 10 s, where Heroku's is 30 s).

afterAll(closeDb);

describe("dyno failures", { timeout: 150_000 }, () => {
  let user: TestAccount;
  const apps: string[] = [];
  const newApp = async () => {
    user ??= await makeAccount();
    const app = await makeApp(user);
    apps.push(app.name);
    return app;
  };

  afterEach(async () => {
    for (const name of apps.splice(0)) await destroyApp(user.token, name);
  });

  it("restarts a dyno whose process is killed with SIGKILL, and one that exits by itself", async () => {
    const { name: app } = await newApp();
    await deploySlug(user.token, app);
    const first = await waitForAnswer(app);
    await waitForUp(user.token, app, ["web.1"]);

    process.kill(first.pid, "SIGKILL");
    // Until the new process answers, visitors get the router's error page, never the agent's own errors.
    const failures: Array<{ status: number; text: string }> = [];
    const second = await waitFor(
      "an answer from a new process",
      async () => {
        const res = await visit(app);
        if (res.status === 200 && res.json!.boot !== first.boot) return res.json!;
        if (res.status !== 200) failures.push({ status: res.status, text: res.text });
        return false;
      },
      90_000,
      50,
    );
    for (const f of failures) {
      expect(f.status, f.text).toBe(503);
      expect(f.text).toContain("Application error");
    }
    expect(second.dyno).toBe("web.1");
    expect(second.boot).not.toBe(first.boot);
    expect(processAlive(first.pid)).toBe(false);
    await waitForUp(user.token, app, ["web.1"]);
    expect(appProcesses(app)).toEqual([second.pid]);

    // A process that exits on its own (status 3) is started again too.
    const crash = await visit(app, "/crash");
    // The process exits right after answering: it is named by its boot id, not a pid that may be gone.
    expect(crash.json).toMatchObject({ crashing: true, boot: second.boot });
    const third = await waitForAnswer(app, (j) => j.boot !== second.boot, 120_000);
    expect(third.dyno).toBe("web.1");
    await waitForUp(user.token, app, ["web.1"]);
    expect(appProcesses(app)).toEqual([third.pid]);
  });

  it("kills a web process that never binds $PORT (R10) and shows the dyno crashed", async () => {
    const { name: app, id: appId } = await newApp();
    await deploySlug(user.token, app, { web: `node no-port.js ${app}` });
    const pid = await waitFor("the web process to run", () => appProcesses(app, "no-port.js")[0]);

    // Killed after the boot timeout, then (after one immediate retry) left crashed while it cools off.
    await waitFor(
      "web.1 crashed and its first process gone",
      async () => !processAlive(pid) && (await listDynos(user.token, app)).some((d) => d.name === "web.1" && d.state === "crashed"),
      120_000,
    );
    // It was killed (SIGKILL: 128 + 9), not left to exit.
    const [row] = await (await db())
      .select({ exitCode: dynos.exitCode })
      .from(dynos)
      .where(and(eq(dynos.appId, appId), eq(dynos.name, "web.1")));
    expect(row?.exitCode).toBe(137);

    // Nothing ever answers: the router serves the application error page.
    const page = await visit(app);
    expect(page.status).toBe(503);
    expect(page.text).toContain("Application error");
  });

  it("answers 503 when a request runs past the router's limit (H12); the dyno keeps running", async () => {
    const { name: app } = await newApp();
    await deploySlug(user.token, app);
    const first = await waitForAnswer(app);
    await waitForUp(user.token, app, ["web.1"]);

    const started = Date.now();
    const slow = await visit(app, "/sleep?s=40");
    const waited = Date.now() - started;
    expect(slow.status).toBe(503);
    expect(slow.text).toContain("Application error");
    // The router gave up at its timeout, not because the dyno failed.
    expect(waited).toBeGreaterThanOrEqual(Number(platform().workerVars.ROUTER_TIMEOUT_S) * 1000 - 1_000);

    const after = await visit(app);
    expect(after.status).toBe(200);
    expect(after.json).toMatchObject({ dyno: "web.1", pid: first.pid });
    expect((await listDynos(user.token, app)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);
  });
});
