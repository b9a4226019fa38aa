import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp } from "../support/slugs.ts";

// `heroku regions`, `heroku stack` (apps:stacks) and `apps:stacks:set` with the unmodified CLI.

afterAll(closeDb);

describe("regions and stacks with the heroku CLI", { timeout: 120_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const cli = (args: string[]) => heroku(args, { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
  }, 300_000);

  afterAll(() => destroyApp(user.token, app.name));

  it("heroku regions lists the platform's regions in the common runtime", async () => {
    const out = await cli(["regions"]);
    expect(out.code, out.stderr).toBe(0);
    const rows = out.stdout.split("\n").filter((l) => /Common Runtime/.test(l));
    expect(rows.map((l) => l.trim().split(/\s+/)[0])).toEqual(["eu", "us"]);
    expect(out.stdout).toMatch(/eu\s+Europe\s+Common Runtime/);
    const json = await cli(["regions", "--json"]);
    expect(JSON.parse(json.stdout).map((r: { name: string }) => r.name)).toEqual(["eu", "us"]);
    expect((await cli(["regions", "--private"])).stdout).not.toMatch(/Common Runtime/);
  });

  it("heroku stack marks the app's stack, and apps:stacks:set changes the next build's", async () => {
    const out = await cli(["stack", "--app", app.name]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`${app.name} Available Stacks`);
    expect(out.stdout).toMatch(/^\* heroku-24$/m);
    expect(out.stdout).toMatch(/^ {2}heroku-22$/m);

    const set = await cli(["stack:set", "heroku-22", "--app", app.name]);
    expect(set.code, set.stderr).toBe(0);
    expect((await api(`/apps/${app.name}`, { token: user.token })).body.build_stack.name).toBe("heroku-22");
    const after = await cli(["stack", "--app", app.name]);
    expect(after.stdout).toMatch(/^\* heroku-24$/m);
    expect(after.stdout).toMatch(/^ {2}heroku-22 \(active on next deploy\)$/m);

    const bad = await cli(["stack:set", "cedar-14", "--app", app.name]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("Stack cedar-14 is not available");
  });
});
