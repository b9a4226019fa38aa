import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apps, dynos, dynoUsage, keepAlive } from "../../src/db/schema/index.ts";
import { ROOT } from "../../src/local/worker.ts";
import { fireCron, platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { deploySlug, destroyApp, listDynos, waitForUp } from "../support/slugs.ts";

// Eco dyno hours and keep-alive with the unmodified heroku CLI 11.10.0 and the operator's
// `dynoplane cron:run`, against the platform's own Worker and host agent.

const execFileAsync = promisify(execFile);
afterAll(closeDb);

describe("eco dyno hours and keep-alive", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    await deploySlug(user.token, app.name);
    await waitForUp(user.token, app.name, ["web.1"]);
  }, 600_000);

  afterAll(() => destroyApp(user.token, app.name));

  it("heroku ps prints the quota lines, with the dyno's metered uptime", async () => {
    // Up for a minute and a bit, since the figures are whole minutes: rather than wait, the
    // dyno's metered stretch and its state's time move 75 s back (only its state, desired
    // state and instance start or end a stretch, so the move is all the meter sees).
    const [open] = await (await db()).select().from(dynoUsage).where(eq(dynoUsage.appId, app.id));
    expect(open!.endedAt).toBeNull();
    const back = sql`interval '75 seconds'`;
    await (await db())
      .update(dynoUsage)
      .set({ startedAt: sql`${dynoUsage.startedAt} - ${back}` })
      .where(eq(dynoUsage.id, open!.id));
    await (await db())
      .update(dynos)
      .set({ stateChangedAt: sql`${dynos.stateChangedAt} - ${back}` })
      .where(eq(dynos.appId, app.id));
    const [stretch] = await (await db()).select().from(dynoUsage).where(eq(dynoUsage.appId, app.id));
    expect(stretch!.endedAt).toBeNull();
    expect(Date.now() - stretch!.startedAt.getTime()).toBeGreaterThanOrEqual(75_000);
    const before = Date.now();
    const ps = await cli(["ps"]);
    const upS = [(before - stretch!.startedAt.getTime()) / 1000, (Date.now() - stretch!.startedAt.getTime()) / 1000];
    expect(ps.code, ps.stderr).toBe(0);
    const remaining = /Eco dyno hours quota remaining this month: (\d+)h (\d+)m \((\d+)%\)/.exec(ps.stdout);
    const usage = /Eco dyno usage for this app: (\d+)h (\d+)m \((\d+)%\)/.exec(ps.stdout);
    expect(remaining, ps.stdout).not.toBeNull();
    expect(usage, ps.stdout).not.toBeNull();
    const usedMin = Number(usage![1]) * 60 + Number(usage![2]);
    expect(usedMin).toBeGreaterThanOrEqual(Math.floor(upS[0]! / 60));
    expect(usedMin).toBeLessThanOrEqual(Math.floor(upS[1]! / 60));
    // The fresh account spent nothing else: the rest of 550 hours is left.
    const leftMin = Number(remaining![1]) * 60 + Number(remaining![2]);
    expect(leftMin).toBeGreaterThanOrEqual(550 * 60 - Math.ceil(upS[1]! / 60));
    expect(leftMin).toBeLessThanOrEqual(550 * 60 - Math.ceil(upS[0]! / 60));
    expect(remaining![3]).toBe("99");
    expect(ps.stdout).toMatch(/web\.1: up /);
  });

  it("features:enable keep-alive, then dynoplane cron:run pings the app through the router", async () => {
    const enabled = await cli(["features:enable", "keep-alive"]);
    expect(enabled.code, enabled.stderr).toBe(0);
    const listed = await cli(["features"]);
    expect(listed.stdout).toMatch(/\[\+\] keep-alive/);
    const again = await cli(["features:enable", "keep-alive"]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("keep-alive is already enabled");
    // 550 hours do not keep one dyno up all month, so the plan gives the app a nightly
    // bedtime (around 04:00 UTC unless its owner picks one). Start it half a day from now
    // so the run below, whenever the suite runs, falls in the app's waking hours.
    const kept = await (await db())
      .update(keepAlive)
      .set({ bedtimeStartHour: (new Date().getUTCHours() + 12) % 24 })
      .where(eq(keepAlive.appId, app.id))
      .returning();
    expect(kept).toHaveLength(1);

    const run = await execFileAsync(process.execPath, [path.join(ROOT, "bin", "dynoplane.js"), "cron:run"], {
      env: { ...process.env, DYNOPLANE_HOME: platform().home },
    });
    expect(run.stdout).toMatch(/Scheduled run \(\*\/10 \* \* \* \*\) at .*: ok in \d+ ms/);

    const logs = await cli(["logs", "-n", "200"]);
    expect(logs.code, logs.stderr).toBe(0);
    const host = `${app.name}.apps.localhost:${platform().port}`;
    expect(logs.stdout).toMatch(new RegExp(`heroku\\[keep-alive\\]: Pinged https://${host.replace(/\./g, "\\.")}/ at=\\S+ status=200 service=\\d+ms`));
    expect(logs.stdout).toMatch(new RegExp(`heroku\\[router\\]: at=info method=GET path="/" host=${host.replace(/\./g, "\\.")} .*status=200`));
    expect(logs.stdout).toContain(`app[api]: Enable keep-alive by user ${user.email}`);
  });

  it("a scheduled run fired by hand for another time acts now: it cannot put an app to sleep early", async () => {
    await (await db())
      .update(apps)
      .set({ lastRequestAt: new Date(Date.now() - 5 * 60_000) })
      .where(eq(apps.id, app.id));
    const nextYear = Date.now() + 365 * 24 * 3600 * 1000;
    await fireCron(new Date(nextYear));
    expect((await listDynos(user.token, app.name)).map((d) => [d.name, d.state])).toEqual([["web.1", "up"]]);
  });

  it("the quota of another account is not found, with the CLI's own request", async () => {
    const stranger = await makeAccount();
    const theirs = await heroku(["ps", "--app", app.name], { home: makeCliHome(), env: { HEROKU_API_KEY: stranger.token } });
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr).toContain(`You do not have access to the app ${app.name}`);
    const other = await makeApp(stranger);
    try {
      const own = await heroku(["ps", "--app", other.name], { home: makeCliHome(), env: { HEROKU_API_KEY: stranger.token } });
      expect(own.stdout).toContain("Eco dyno hours quota remaining this month: 550h 0m (100%)");
    } finally {
      await destroyApp(stranger.token, other.name);
    }
  });
});
