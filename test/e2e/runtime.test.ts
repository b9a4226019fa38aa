import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { wholeLog } from "../support/log-app.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome, type CliResult } from "../support/heroku-cli.ts";
import { appProcesses, deploySlug, destroyApp, listDynos, visit, waitFor, waitForAnswer, waitForUp, type AppAnswer } from "../support/slugs.ts";

// A slug released through the Slug API runs as real processes under the host agent, and
// the unmodified heroku CLI scales, lists, restarts and stops them while the router
// spreads requests over the web dynos.

function expectOk(res: CliResult) {
  if (res.code !== 0) throw new Error(`exit ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}

/** The dyno → pid pairs seen over `count` requests through the router. */
async function sample(app: string, count = 10): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const res: AppAnswer = await visit(app);
    expect(res.status, res.text).toBe(200);
    seen.set(res.json!.dyno, res.json!.pid);
  }
  return seen;
}

afterAll(closeDb);

beforeAll(async () => {
  await ensureHerokuCli();
}, 600_000);

describe("dynos from a slug, driven by heroku ps:* and reached through the router", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let home: string;
  let app: string;
  const run = async (args: string[]) => {
    const res = await heroku([...args, "-a", app], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 120_000 });
    expectOk(res);
    return { ...res, output: res.stdout + res.stderr };
  };

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    app = (await makeApp(user)).name;
  });

  afterAll(async () => {
    if (user && app) await destroyApp(user.token, app);
  });

  it("releases an uploaded slug: web=1 runs it and the app answers through the router", async () => {
    const { release } = await deploySlug(user.token, app);
    expect(release).toMatchObject({ version: 2, status: "succeeded" });

    const answer = await waitForAnswer(app);
    expect(answer).toMatchObject({ dyno: "web.1", greeting: null, file: false, args: [app] });
    const formation = await api(`/apps/${app}/formation`, { token: user.token });
    expect(formation.body.map((f: any) => [f.type, f.quantity, f.size, f.command])).toEqual([["web", 1, "Eco", `node server.js ${app}`]]);
    await waitForUp(user.token, app, ["web.1"]);
    expect(appProcesses(app)).toEqual([answer.pid]);
  });

  it("keeps a dyno's files only until it restarts", async () => {
    const written = await visit(app, "/write-file");
    expect(written.json).toMatchObject({ dyno: "web.1", file: true });
    const again = await visit(app);
    expect(again.json).toMatchObject({ pid: written.json!.pid, file: true });

    const res = await run(["ps:restart", "web.1"]);
    expect(res.output).toContain("Restarting dyno web.1");
    const fresh = await waitForAnswer(app, (j) => j.pid !== written.json!.pid);
    expect(fresh).toMatchObject({ dyno: "web.1", file: false });
    expect(fresh.boot).not.toBe(written.json!.boot);
  });

  it("ps:scale web=2 is refused on Eco dynos as on Heroku, and changes nothing", async () => {
    const res = await heroku(["ps:scale", "web=2", "-a", app], { home, env: { HEROKU_API_KEY: user.token } });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain("Cannot update to more than 1 Eco size dynos per process type.");
    expect((await api(`/apps/${app}/formation/web`, { token: user.token })).body).toMatchObject({ quantity: 1, size: "Eco" });
    expect((await listDynos(user.token, app)).map((d) => d.name)).toEqual(["web.1"]);
  });

  it("ps:scale web=2:standard-1x starts a second dyno; ps lists both up; the router reaches both", async () => {
    const scaled = await run(["ps:scale", "web=2:standard-1x"]);
    expect(scaled.output).toContain("done, now running web at 2:Standard-1X");
    const formation = await api(`/apps/${app}/formation/web`, { token: user.token });
    expect(formation.body).toMatchObject({ type: "web", quantity: 2, size: "Standard-1X" });

    await waitForUp(user.token, app, ["web.1", "web.2"]);
    const ps = await run(["ps"]);
    expect(ps.stdout).toContain(`=== web (Standard-1X): node server.js ${app} (2)`);
    expect(ps.stdout).toMatch(/^web\.1: up\b/m);
    expect(ps.stdout).toMatch(/^web\.2: up\b/m);

    const seen = await sample(app);
    expect([...seen.keys()].sort()).toEqual(["web.1", "web.2"]);
    expect(appProcesses(app)).toEqual([...seen.values()].sort((a, b) => a - b));
  });

  it("ps:restart replaces every dyno's process", async () => {
    const before = await sample(app);
    expect(before.size).toBe(2);
    const res = await run(["ps:restart"]);
    expect(res.output).toContain("Restarting all dynos");

    const after = await waitFor(
      "both dynos answering from new processes",
      async () => {
        const seen = await sample(app, 6);
        return seen.size === 2 && [...seen].every(([dyno, pid]) => pid !== before.get(dyno)) ? seen : false;
      },
      120_000,
    );
    await waitForUp(user.token, app, ["web.1", "web.2"]);
    // The replaced processes are gone: exactly the new ones run.
    await waitFor("only the new processes running", () => {
      const pids = appProcesses(app);
      return pids.length === 2 && pids.every((p) => [...after.values()].includes(p));
    });
  });

  it("config:set restarts the dynos on the new config", async () => {
    const res = await run(["config:set", "GREETING=hi"]);
    expect(res.output).toMatch(/done, v\d+/);
    const greeted = await waitFor(
      "both dynos answering with GREETING=hi",
      async () => {
        const seen = new Map<string, string | null>();
        for (let i = 0; i < 6; i++) {
          const r = await visit(app);
          if (r.status === 200) seen.set(r.json!.dyno, r.json!.greeting);
        }
        return seen.size === 2 && [...seen.values()].every((g) => g === "hi");
      },
      120_000,
    );
    expect(greeted).toBe(true);
    await waitForUp(user.token, app, ["web.1", "web.2"]);
  });

  it("ps:stop web.2 ends that dyno's process and the platform starts it again, as Heroku does; ps:wait returns once it is up", async () => {
    const before = await sample(app);
    expect(before.size).toBe(2);
    const res = await run(["ps:stop", "web.2"]);
    expect(res.output).toContain("Stopping dyno web.2");
    const wait = await run(["ps:wait"]);
    expect(wait.code).toBe(0);
    const dynos = await listDynos(user.token, app);
    expect(dynos.map((d) => [d.name, d.state]).sort()).toEqual([
      ["web.1", "up"],
      ["web.2", "up"],
    ]);
    const after = await waitFor(
      "web.2 answering from a new process, web.1 from its old one",
      async () => {
        const seen = await sample(app, 6);
        return seen.size === 2 && seen.get("web.2") !== before.get("web.2") && seen.get("web.1") === before.get("web.1") ? seen : false;
      },
      60_000,
    );
    await waitFor("only the two serving processes running", () => {
      const pids = appProcesses(app);
      return pids.length === 2 && pids.every((p) => [...after.values()].includes(p));
    });
  });

  it("maintenance:on answers H80 with the maintenance page while the dynos keep running; maintenance:off serves again", async () => {
    const running = appProcesses(app);
    expect(running).toHaveLength(2);
    expectOk(await run(["maintenance:on"]));
    const page = await waitFor(
      "the maintenance page",
      async () => {
        const res = await visit(app);
        return res.status === 503 && res.text.includes("Offline for Maintenance") ? res : false;
      },
      10_000,
    );
    expect(page.text).not.toContain("Application error");
    expect(appProcesses(app)).toEqual(running);
    // The router's line, read through a log session (the way `heroku logs` reads it) while it is awaited.
    await waitFor(
      "the H80 router line",
      async () => (await wholeLog(user.token, app, { lines: 50 })).some((l) => l.includes('heroku[router]: at=info code=H80 desc="Maintenance mode"')),
      20_000,
      250,
    );
    expectOk(await run(["maintenance:off"]));
    const back = await waitForAnswer(app, () => true, 10_000);
    expect(back.dyno).toMatch(/^web\.[12]$/);
  });

  it("ps:scale web=0 stops everything; the router then answers 503 with the application error page (H14)", async () => {
    const res = await run(["ps:scale", "web=0"]);
    expect(res.output).toContain("done, now running web at 0:Standard-1X");
    expect(await listDynos(user.token, app)).toEqual([]);
    const page = await visit(app);
    expect(page.status).toBe(503);
    expect(page.text).toContain("Application error");
    await waitFor("no processes left", () => appProcesses(app).length === 0);
  });
});
