import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, tlsAgent } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit, type GitRun } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { logSessionUrl } from "../support/log-app.ts";
import { destroyApp, listDynos, visit, waitFor } from "../support/slugs.ts";

// The release phase of `git push heroku main`, with real git and the unmodified CLI: the
// Procfile's `release:` runs once in a release.N one-off dyno, from the new slug with the
// app's config, its output in the push and in the app's log; a failing release command
// leaves the previous release serving and marks its own release failed.

afterAll(closeDb);

beforeAll(() => ensureHerokuCli(), 600_000);

const PROCFILE = "web: python3 -m http.server $PORT\nrelease: sh ./migrate.sh\n";
const MIGRATE = 'echo "migrating as $DYNO with $GREETING in $PWD"\nexit "$(cat status)"\n';
const page = (text: string) => `<h1>${text}</h1>\n`;

describe("the release phase", { timeout: 240_000 }, () => {
  let user: TestAccount;
  let home: string;
  let repo: string;
  let env: Record<string, string>;
  const name = appName("release");
  const git = (...args: string[]) => runGit(args, { cwd: repo, env, timeoutMs: 200_000 });
  const commit = (files: Record<string, string>, message: string) =>
    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), files, message);
  const pushed = (res: GitRun) => `exit ${res.code}\n${res.stderr}`;
  const cli = (args: string[]) => heroku([...args, "--app", name], { home, env: { HEROKU_API_KEY: user.token } });
  const releases = async () =>
    (await api(`/apps/${name}/releases`, { token: user.token })).body as Array<{ version: number; status: string; current: boolean }>;

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, user);
    await git("init", "-q", "-b", "main");
    const created = await heroku(["create", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    expect(created.code, created.stderr).toBe(0);
    const set = await cli(["config:set", "GREETING=merhaba"]);
    expect(set.code, set.stderr).toBe(0);
  });

  afterAll(async () => {
    if (user) await destroyApp(user.token, name);
  });

  it("runs the release command once in a release.N dyno before the release goes live; its output is in the push and the log", async () => {
    commit({ Procfile: PROCFILE, "migrate.sh": MIGRATE, status: "0\n", "index.html": page("first deploy") }, "first");
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).toBe(0);
    const lines = res.stderr.split("\n").map((l) => l.trimEnd());
    const dyno = /Running release command on (release\.\d{4}): sh \.\/migrate\.sh/.exec(res.stderr)?.[1];
    expect(dyno, pushed(res)).toBeDefined();
    const expected = [
      "remote: -----> Launching...",
      "remote:  !     Release command declared: this new release will not be available until the command succeeds.",
      `remote:        Running release command on ${dyno}: sh ./migrate.sh`,
      `remote: migrating as ${dyno} with merhaba in /app`,
      "remote:        Release command succeeded",
      "remote:        Released v3",
      "remote: Verifying deploy... done.",
    ];
    const at = expected.map((l) => lines.indexOf(l));
    expect(
      at.every((i) => i >= 0),
      pushed(res),
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    await waitFor("the app to answer", async () => (await visit(name)).text.includes("first deploy"), 90_000);
    expect((await releases()).at(-1)).toMatchObject({ version: 3, status: "succeeded", current: true });
    // The release command is no process type to scale, and its dyno is gone once it ended.
    const ps = await cli(["ps"]);
    expect(ps.stdout).not.toMatch(/^=== release/m);
    expect((await listDynos(user.token, name)).map((d) => d.type)).toEqual(["web"]);
    const url = await logSessionUrl(user.token, name, { dyno: dyno!, lines: 100 });
    const log = await (await fetch(url, { dispatcher: tlsAgent() })).text();
    expect(log).toContain(`app[${dyno}]: migrating as ${dyno} with merhaba in /app`);
    expect(log).toContain(`heroku[${dyno}]: Process exited with status 0`);
  });

  it("keeps the previous release serving when the release command fails, and marks the new release failed", async () => {
    commit({ status: "7\n", "index.html": page("second deploy") }, "second");
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).not.toBe(0);
    expect(res.stderr).toMatch(/remote: migrating as release\.\d{4} with merhaba/);
    expect(res.stderr).toContain("remote:  !     Release command failed (exit status 7)");
    expect(res.stderr).toContain("remote:  !     Push failed");
    expect(res.stderr).not.toContain("Released v4");
    const all = await releases();
    expect(all.at(-1)).toMatchObject({ version: 4, status: "failed", current: false });
    expect(all.find((r) => r.current)).toMatchObject({ version: 3 });
    const listed = await cli(["releases"]);
    expect(listed.stdout).toMatch(/v4 .*release command failed/);
    expect(listed.stdout).toContain("Current: v3");
    // Still the first deploy, on the web dyno that never restarted.
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await visit(name)).text).toContain("first deploy");
    // Fixed and pushed again, it goes live.
    commit({ status: "0\n" }, "third");
    const again = await git("push", "heroku", "main");
    expect(again.code, pushed(again)).toBe(0);
    expect(again.stderr).toContain("remote:        Released v5");
    await waitFor("the second deploy to answer", async () => (await visit(name)).text.includes("second deploy"), 90_000);
  });
});
