import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, herokuPty, makeCliHome, readNetrc, type CliResult } from "../support/heroku-cli.ts";
import { deploySlug } from "../support/slugs.ts";

// The unmodified heroku CLI 11.10.0, logged in with `login -i`, driving one account
// through its first day: apps, config vars, releases, rollback, destroy, logout.

/** Output lines without trailing padding (the CLI pads table and key/value columns). */
const lines = (text: string) => text.split("\n").map((l) => l.trimEnd());

function expectOk(res: CliResult) {
  if (res.code !== 0) throw new Error(`exit ${res.code}\nstdout:\n${res.stdout}\nstderr:\n${res.stderr}`);
}

/** Signs in with `heroku login -i`, typing the email and password at the prompts. */
async function loginInteractive(home: string, email: string, password: string) {
  const session = await herokuPty(["login", "-i"], { home });
  try {
    await session.expect(/\? Email/);
    session.write(`${email}\r`);
    await session.expect(/\? Password/);
    session.write(`${password}\r`);
    return await session.exited();
  } finally {
    session.kill();
  }
}

afterAll(closeDb);

beforeAll(async () => {
  await ensureHerokuCli();
}, 600_000);

describe("heroku CLI 11.10.0: login, apps, config, releases, destroy, logout", { timeout: 90_000 }, () => {
  const port = () => platform().port;
  const machine = () => `localhost:${port()}`;
  const webUrl = (name: string) => `https://${name}.apps.localhost:${port()}/`;
  const gitUrl = (name: string) => `https://localhost:${port()}/${name}.git`;

  let user: TestAccount;
  let home: string;
  let repo: string;
  let cliToken: string;
  const named = appName("cli");
  let unnamed: string;
  const run = (args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) => heroku(args, { home, ...opts });

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    execFileSync("git", ["init", "-q", repo]);
  });

  it("login -i asks for email and password and stores a new token in ~/.netrc", async () => {
    const { code, output } = await loginInteractive(home, user.email, user.password);
    expect(code, output).toBe(0);
    expect(output).toContain("heroku: Enter your login credentials");
    expect(output).toContain(`Logged in as ${user.email}`);
    expect(output).not.toContain(user.password);

    const netrc = readNetrc(home);
    expect(Object.keys(netrc)).toEqual([machine()]);
    expect(netrc[machine()]!.login).toBe(user.email);
    cliToken = netrc[machine()]!.password!;
    expect(cliToken).toMatch(/^\S{20,}$/);
    expect(cliToken).not.toBe(user.token);

    const account = await api("/account", { token: cliToken });
    expect(account.status).toBe(200);
    expect(account.body.email).toBe(user.email);
    const authorizations = await api("/oauth/authorizations", { token: cliToken });
    const mine = authorizations.body.filter((a: any) => a.description === `Heroku CLI login from ${os.hostname()}`);
    expect(mine).toHaveLength(1);
    expect(mine[0].user.email).toBe(user.email);
    expect(mine[0].access_token.expires_in).toBeGreaterThan(2592000 - 120);
    expect(mine[0].access_token.expires_in).toBeLessThanOrEqual(2592000);
  });

  it("login -i with a wrong password fails and stores nothing", async () => {
    const otherHome = makeCliHome();
    const { code, output } = await loginInteractive(otherHome, user.email, `${user.password}-wrong`);
    expect(code).not.toBe(0);
    expect(output).toContain("Invalid credentials provided.");
    expect(output).not.toContain("Logged in as");
    expect(readNetrc(otherHome)).toEqual({});
  });

  it("auth:whoami prints the email of the netrc login, and HEROKU_API_KEY wins over it", async () => {
    const whoami = await run(["auth:whoami"]);
    expectOk(whoami);
    expect(whoami.stdout).toBe(`${user.email}\n`);

    const other = await makeAccount();
    const withKey = await run(["auth:whoami"], { env: { HEROKU_API_KEY: other.token } });
    expectOk(withKey);
    expect(withKey.stdout).toBe(`${other.email}\n`);
    expect(withKey.stderr).toContain("HEROKU_API_KEY is set");
  });

  it("apps:create NAME creates the app and, inside a git repository, adds the heroku remote", async () => {
    const res = await run(["apps:create", named], { cwd: repo });
    expectOk(res);
    expect(res.stdout).toBe(`${webUrl(named)} | ${gitUrl(named)}\n`);
    expect(res.stderr).toContain(`Creating ${named}... done`);
    expect(execFileSync("git", ["remote", "get-url", "heroku"], { cwd: repo, encoding: "utf8" }).trim()).toBe(gitUrl(named));

    const app = await api(`/apps/${named}`, { token: user.token });
    expect(app.status).toBe(200);
    expect(app.body.owner.email).toBe(user.email);
  });

  it("apps:create without a name picks a random one", async () => {
    const res = await run(["apps:create"]);
    expectOk(res);
    const m = /Creating app\.\.\. done, ([a-z]+-[a-z]+-\d{5})\n/.exec(res.stderr);
    expect(m, res.stderr).not.toBeNull();
    unnamed = m![1]!;
    expect(res.stdout).toBe(`${webUrl(unnamed)} | ${gitUrl(unnamed)}\n`);
    expect((await api(`/apps/${unnamed}`, { token: user.token })).status).toBe(200);
  });

  it("apps lists exactly the account's apps, by name", async () => {
    const res = await run(["apps"]);
    expectOk(res);
    expect(lines(res.stdout)).toEqual([`=== ${user.email} Apps`, "", ...[named, unnamed].sort(), ""]);
  });

  it("apps:info shows the URLs, owner, region and stack", async () => {
    const res = await run(["apps:info", "-a", named]);
    expectOk(res);
    expect(lines(res.stdout)).toEqual([
      `=== ${named}`,
      "",
      "Auto Cert Mgmt: false",
      `Git URL:        ${gitUrl(named)}`,
      `Web URL:        ${webUrl(named)}`,
      "Repo Size:      0 B",
      "Slug Size:      0 B",
      `Owner:          ${user.email}`,
      "Region:         us",
      "Dynos:",
      "Stack:          heroku-24",
      "",
    ]);
  });

  it("a first deploy (a slug with no processes) becomes v2", async () => {
    const { release } = await deploySlug(user.token, named, {});
    expect(release).toMatchObject({ version: 2, description: "Deploy 01234567" });
  });

  it("config:set sets both vars and reports the new release", async () => {
    const res = await run(["config:set", "FOO=bar", "B=a b=c", "-a", named]);
    expectOk(res);
    expect(res.stderr).toContain(`Setting FOO, B and restarting ${named}... done, v3`);
    expect(lines(res.stdout)).toEqual(["FOO: bar", "B:   a b=c", ""]);
  });

  it("config:get prints one value, and an empty line for a missing var", async () => {
    const foo = await run(["config:get", "FOO", "-a", named]);
    expectOk(foo);
    expect(foo.stdout).toBe("bar\n");
    const b = await run(["config:get", "B", "-a", named]);
    expect(b.stdout).toBe("a b=c\n");
    const missing = await run(["config:get", "NOPE", "-a", named]);
    expectOk(missing);
    expect(missing.stdout).toBe("\n");
  });

  it("config lists both vars", async () => {
    const res = await run(["config", "-a", named]);
    expectOk(res);
    expect(lines(res.stdout)).toEqual([`=== ${named} Config Vars`, "", "B:   a b=c", "FOO: bar", ""]);
  });

  it("config:unset removes the var in a new release", async () => {
    const res = await run(["config:unset", "FOO", "-a", named]);
    expectOk(res);
    expect(res.stderr).toContain(`Unsetting FOO and restarting ${named}... done, v4`);
    const config = await run(["config", "-a", named]);
    expect(lines(config.stdout)).toEqual([`=== ${named} Config Vars`, "", "B: a b=c", ""]);
  });

  /** [version, description, user] of each row of `heroku releases`. */
  const releaseRows = (stdout: string) =>
    lines(stdout)
      .map((l) => /^\s*v(\d+)\s+(.+?)\s{2,}(\S+@\S+)\s+\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d [+-]\d{4}/.exec(l))
      .filter((m) => m !== null)
      .map((m) => [Number(m[1]), m[2], m[3]]);

  it("releases lists the history, newest first, with the current version", async () => {
    const res = await run(["releases", "-a", named]);
    expectOk(res);
    expect(lines(res.stdout)[0]).toBe(`=== ${named} Releases - Current: v4`);
    expect(releaseRows(res.stdout)).toEqual([
      [4, "Remove FOO config vars", user.email],
      [3, "Set FOO, B config vars", user.email],
      [2, "Deploy 01234567", user.email],
      [1, "Initial release", user.email],
    ]);
  });

  it("releases:info v3 shows the release and the config it carried", async () => {
    const res = await run(["releases:info", "v3", "-a", named]);
    expectOk(res);
    const out = lines(res.stdout);
    expect(out.slice(0, 3)).toEqual(["=== Release v3", "", `By:                     ${user.email}`]);
    expect(out[3]).toBe("Change:                 Set FOO, B config vars");
    expect(out[4]).toBe("Eligible for Rollback?: Yes");
    expect(out[5]).toMatch(/^When:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(out.slice(6)).toEqual(["", "=== v3 Config vars", "", "B:   a b=c", "FOO: bar", ""]);
  });

  it("rollback goes back to the previous release and restores its config", async () => {
    const res = await run(["rollback", "-a", named]);
    expectOk(res);
    expect(res.stderr).toContain(`Rolling back ${named} to v3... done, v5`);
    expect(res.stderr).toContain("To undo, run: heroku rollback v4");

    const config = await run(["config", "-a", named]);
    expect(lines(config.stdout)).toEqual([`=== ${named} Config Vars`, "", "B:   a b=c", "FOO: bar", ""]);
    const releases = await run(["releases", "-a", named]);
    expect(lines(releases.stdout)[0]).toBe(`=== ${named} Releases - Current: v5`);
    expect(releaseRows(releases.stdout)[0]).toEqual([5, "Rollback to v3", user.email]);
    expect(releaseRows(releases.stdout)).toHaveLength(5);
  });

  it("apps:destroy deletes the app and its git remote; apps:info then cannot find it", async () => {
    const res = await run(["apps:destroy", named, "--confirm", named], { cwd: repo });
    expectOk(res);
    expect(res.stderr).toContain(`Destroying ${named} (including all add-ons)... done`);
    expect(execFileSync("git", ["remote"], { cwd: repo, encoding: "utf8" })).toBe("");

    const info = await run(["apps:info", "-a", named]);
    expect(info.code).toBe(2);
    expect(info.stdout).toBe("");
    expect(info.stderr).toContain("Couldn't find that app.");
    expect(info.stderr).toContain("Error ID: not_found");
    expect((await api(`/apps/${named}`, { token: user.token })).status).toBe(404);

    const list = await run(["apps"]);
    expect(lines(list.stdout)).toEqual([`=== ${user.email} Apps`, "", unnamed, ""]);
  });

  it("apps:destroy with a wrong --confirm refuses and keeps the app", async () => {
    const res = await run(["apps:destroy", unnamed, "--confirm", "something-else"]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain(`Confirmation something-else did not match ${unnamed}. Aborted.`);
    expect((await api(`/apps/${unnamed}`, { token: user.token })).status).toBe(200);
  });

  it("logout revokes the CLI token and forgets it locally", async () => {
    const res = await run(["logout"]);
    expectOk(res);
    expect(res.stderr).toContain("Logging out... done");
    expect(readNetrc(home)).toEqual({});

    const revoked = await api("/account", { token: cliToken });
    expect(revoked.status).toBe(401);
    expect(revoked.body.id).toBe("unauthorized");
    // Other tokens of the same account keep working.
    expect((await api("/account", { token: user.token })).status).toBe(200);

    const whoami = await run(["auth:whoami"]);
    expect(whoami.code).toBe(100);
    expect(whoami.stdout).toBe("");
    expect(whoami.stderr).toContain("not logged in");

    const withOldToken = await run(["auth:whoami"], { env: { HEROKU_API_KEY: cliToken } });
    expect(withOldToken.code).toBe(2);
    expect(withOldToken.stdout).toBe("");
    expect(withOldToken.stderr).toContain("Invalid credentials provided.");
    expect(withOldToken.stderr).toContain("Error ID: unauthorized");
  });
});
