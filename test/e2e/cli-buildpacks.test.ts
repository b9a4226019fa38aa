import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp } from "../support/slugs.ts";

// Buildpacks by name with the unmodified CLI: the registry lookups it makes
// (HEROKU_BUILDPACK_REGISTRY_URL, from the platform's exports) and the buildpack a build detected.

afterAll(closeDb);

describe("heroku buildpacks by name", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let home: string;
  let repo: string;
  let env: Record<string, string>;
  const name = appName("bp");
  const cli = (args: string[]) => heroku([...args, "--app", name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });
  const installed = async () =>
    (await api(`/apps/${name}/buildpack-installations`, { token: user.token })).body.map((b: { buildpack: { url: string } }) => b.buildpack.url);

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, user);
    await runGit(["init", "-q", "-b", "main"], { cwd: repo, env });
    commitFiles(
      repo,
      (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }),
      { Procfile: "web: python3 -m http.server $PORT\n" },
      "first",
    );
    const created = await heroku(["create", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    expect(created.code, created.stderr).toBe(0);
  }, 600_000);

  afterAll(() => destroyApp(user.token, name));

  it("lists the buildpack a build detected, which later builds use", async () => {
    expect((await cli(["buildpacks"])).stdout).toContain(`${name} has no Buildpacks.`);
    const pushed = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 150_000 });
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stderr).toContain("remote: -----> Determining which buildpack to use for this app");
    const listed = await cli(["buildpacks"]);
    expect(listed.stdout).toContain(`=== ${name} Classic Buildpack`);
    expect(listed.stdout).toMatch(/^heroku\/procfile$/m);

    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), { "index.html": "<h1>again</h1>\n" }, "second");
    const again = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 150_000 });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("remote: -----> Using buildpack: heroku/procfile");
    expect(again.stderr).not.toContain("Determining which buildpack");
  });

  it("buildpacks:set, add and remove by name, through the platform's registry", async () => {
    expect(platform().cliEnv.HEROKU_BUILDPACK_REGISTRY_URL).toBe(`${platform().apiUrl}/buildpack-registry`);
    const set = await cli(["buildpacks:set", "heroku/python"]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain(`Buildpack set. Next release on ${name} will use heroku/python.`);
    expect(await installed()).toEqual(["heroku/python"]);

    const add = await cli(["buildpacks:add", "--index", "1", "heroku/nodejs"]);
    expect(add.code, add.stderr).toBe(0);
    expect(await installed()).toEqual(["heroku/nodejs", "heroku/python"]);

    const unknown = await cli(["buildpacks:add", "heroku/ruby"]);
    expect(unknown.code).not.toBe(0);
    expect(await installed()).toEqual(["heroku/nodejs", "heroku/python"]);

    const removed = await cli(["buildpacks:remove", "heroku/nodejs"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await installed()).toEqual(["heroku/python"]);
  });
});
