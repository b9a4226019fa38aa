import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp } from "../support/slugs.ts";

// `heroku git:clone` with the unmodified CLI and git: the app's last deployed commit comes
// back, history included, for its owner and collaborators and for no one else.

afterAll(closeDb);

describe("heroku git:clone", { timeout: 240_000 }, () => {
  let owner: TestAccount;
  let home: string;
  let repo: string;
  let env: Record<string, string>;
  const name = appName("clone");
  let second = "";

  beforeAll(async () => {
    await ensureHerokuCli();
    owner = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, owner);
    await runGit(["init", "-q", "-b", "main"], { cwd: repo, env });
    const git = (...args: string[]) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" });
    commitFiles(repo, git, { Procfile: "web: python3 -m http.server $PORT\n", "index.html": "<h1>one</h1>\n" }, "first");
    const created = await heroku(["create", name], { home, cwd: repo, env: { HEROKU_API_KEY: owner.token } });
    expect(created.code, created.stderr).toBe(0);
    expect((await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 150_000 })).code).toBe(0);
    mkdirSync(path.join(repo, "docs"));
    second = commitFiles(repo, git, { "index.html": "<h1>two</h1>\n", "docs/notes.md": "kept\n" }, "second");
    const pushed = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 150_000 });
    expect(pushed.code, pushed.stderr).toBe(0);
  }, 600_000);

  afterAll(() => destroyApp(owner.token, name));

  it("gives the owner the last deployed commit, its tree and its history", async () => {
    // git asks the CLI for credentials (`heroku git:credentials`), so the CLI is on its PATH.
    const cloned = await heroku(["git:clone", "-a", name, "copy"], {
      home,
      cwd: home,
      env: { HEROKU_API_KEY: owner.token, PATH: env.PATH },
      timeoutMs: 120_000,
    });
    expect(cloned.code, cloned.stderr).toBe(0);
    expect(cloned.stderr).not.toContain("fatal");
    const copy = path.join(home, "copy");
    const git = (...args: string[]) => execFileSync("git", args, { cwd: copy, env, encoding: "utf8" }).trim();
    expect(git("rev-parse", "HEAD")).toBe(second);
    expect(git("log", "--format=%s")).toBe("second\nfirst");
    expect(readFileSync(path.join(copy, "index.html"), "utf8")).toBe("<h1>two</h1>\n");
    expect(readFileSync(path.join(copy, "docs", "notes.md"), "utf8")).toBe("kept\n");
    expect(git("remote")).toBe("heroku");
    expect(git("fsck", "--no-progress")).toBe("");
  });

  it("lets a collaborator clone and refuses a stranger", async () => {
    const helper = await makeAccount();
    const stranger = await makeAccount();
    expect((await api(`/apps/${name}/collaborators`, { method: "POST", token: owner.token, body: { user: helper.email } })).status).toBe(201);
    for (const [who, ok] of [
      [helper, true],
      [stranger, false],
    ] as const) {
      const theirs = makeCliHome();
      const theirEnv = await gitPushEnv(theirs, who);
      const url = `https://heroku:${who.token}@${new URL(env.HEROKU_HOST!).host}/${name}.git`;
      const res = await runGit(["clone", "-q", url, "copy"], { cwd: theirs, env: theirEnv, timeoutMs: 60_000 });
      if (ok) {
        expect(res.code, res.stderr).toBe(0);
        expect(readFileSync(path.join(theirs, "copy", "index.html"), "utf8")).toBe("<h1>two</h1>\n");
      } else {
        expect(res.code).not.toBe(0);
        expect(res.stderr).toMatch(new RegExp(`You do not have access to the app ${name}|403`));
        expect(existsSync(path.join(theirs, "copy", "index.html"))).toBe(false);
      }
    }
  });
});
