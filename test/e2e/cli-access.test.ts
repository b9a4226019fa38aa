import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp, visit, waitFor } from "../support/slugs.ts";

// `heroku access` with the unmodified CLI: the owner lets a second person in; they push and
// the app runs their code, but they cannot destroy it; once removed, they are out.

afterAll(closeDb);

describe("heroku access, with a collaborator who deploys", { timeout: 240_000 }, () => {
  let owner: TestAccount;
  let helper: TestAccount;
  let ownerHome: string;
  let helperHome: string;
  const name = appName("team");
  const asOwner = (args: string[]) => heroku([...args, "--app", name], { home: ownerHome, env: { HEROKU_API_KEY: owner.token }, timeoutMs: 60_000 });
  const asHelper = (args: string[], cwd?: string) =>
    heroku([...args, "--app", name], { home: helperHome, cwd, env: { HEROKU_API_KEY: helper.token }, timeoutMs: 60_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    owner = await makeAccount();
    helper = await makeAccount();
    ownerHome = makeCliHome();
    helperHome = makeCliHome();
    const created = await heroku(["apps:create", name], { home: ownerHome, env: { HEROKU_API_KEY: owner.token } });
    expect(created.code, created.stderr).toBe(0);
  }, 600_000);

  afterAll(() => destroyApp(owner.token, name));

  it("access:add lets a collaborator in, and heroku access lists them", async () => {
    const added = await asOwner(["access:add", helper.email]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toContain(`Adding ${helper.email} access to the app ${name}... done`);
    const listed = await asOwner(["access"]);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout.split("\n");
    expect(rows.some((line) => line.includes(owner.email) && line.includes("owner"))).toBe(true);
    expect(rows.some((line) => line.includes(helper.email) && line.includes("collaborator"))).toBe(true);
    const theirs = await heroku(["apps"], { home: helperHome, env: { HEROKU_API_KEY: helper.token } });
    expect(theirs.stdout).toContain("Collaborated Apps");
    expect(theirs.stdout.split("\n").some((line) => line.includes(name) && line.includes(owner.email))).toBe(true);
  });

  it("the collaborator pushes and the app runs their code, but apps:destroy is refused", async () => {
    const repo = path.join(helperHome, "project");
    mkdirSync(repo);
    const env = await gitPushEnv(helperHome, helper);
    await runGit(["init", "-q", "-b", "main"], { cwd: repo, env });
    commitFiles(
      repo,
      (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }),
      { Procfile: "web: python3 -m http.server $PORT\n", "index.html": "<h1>from the collaborator</h1>\n" },
      "first",
    );
    expect((await asHelper(["git:remote"], repo)).code).toBe(0);
    const pushed = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 150_000 });
    expect(pushed.code, pushed.stderr).toBe(0);
    const page = await waitFor("the collaborator's page", async () => (await visit(name)).text.includes("from the collaborator"), 60_000);
    expect(page).toBe(true);
    const releases = await asOwner(["releases"]);
    expect(releases.stdout).toContain(helper.email);

    const destroy = await asHelper(["apps:destroy", "--confirm", name]);
    expect(destroy.code).not.toBe(0);
    expect(destroy.stderr).toContain(`Only the owner of ${name} (${owner.email}) can delete it.`);
    expect((await api(`/apps/${name}`, { token: owner.token })).status).toBe(200);
  });

  it("access:remove takes the access away at once", async () => {
    const removed = await asOwner(["access:remove", helper.email]);
    expect(removed.code, removed.stderr).toBe(0);
    const info = await asHelper(["apps:info"]);
    expect(info.code).not.toBe(0);
    expect(info.stderr).toContain(`You do not have access to the app ${name}.`);
    expect((await asOwner(["access"])).stdout).not.toContain(helper.email);
  });
});
