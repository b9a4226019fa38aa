import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apps, builds, gitPacks } from "../../src/db/schema/index.ts";
import { PART_BYTES } from "../../src/lib/r2-upload.ts";
import { packsForBuild } from "../../src/services/builds/git-packs.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit, type GitRun } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp, visit, waitFor } from "../support/slugs.ts";

// `git push heroku main` with real git and the unmodified heroku CLI 11.10.0: `heroku
// create` adds the remote, the CLI's credential helper answers git's Basic challenge, the
// build runs on the local host agent and its output streams back as `remote:` lines.

afterAll(closeDb);

// Installing the CLI on first use takes about a minute.
beforeAll(() => ensureHerokuCli(), 600_000);

const PROCFILE = "web: python3 -m http.server $PORT\n";
const page = (text: string) => `<h1>${text}</h1>\n`;

/** A buildpack on the build host whose compile prints a line, sleeps 5 s, then prints another. */
function slowBuildpack(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-slow-bp-"));
  mkdirSync(path.join(dir, "bin"));
  const scripts = {
    detect: '#!/bin/sh\necho "Slow"\n',
    compile: '#!/bin/sh\necho "-----> Slow step starting"\nsleep 5\necho "-----> Slow step done"\n',
    release: '#!/bin/sh\necho "--- {}"\n',
  };
  for (const [name, body] of Object.entries(scripts)) writeFileSync(path.join(dir, "bin", name), body, { mode: 0o755 });
  chmodSync(dir, 0o755);
  return dir;
}

describe("git push heroku main", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let home: string;
  let repo: string;
  const name = appName("push");
  let env: Record<string, string>;
  const git = (...args: string[]) => runGit(args, { cwd: repo, env, timeoutMs: 150_000 });
  const commit = (files: Record<string, string>, message: string) =>
    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), files, message);
  const pushed = (res: GitRun) => `exit ${res.code}\n${res.stderr}`;
  const answers = (text: string) => waitFor(`the app to answer ${text}`, async () => (await visit(name)).text.includes(text), 90_000);
  const appRow = async () => (await (await db()).select().from(apps).where(eq(apps.name, name)))[0]!;

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, user, { credentialHelper: true });
    await git("init", "-q", "-b", "main");
    commit({ Procfile: PROCFILE, "index.html": page("first deploy") }, "first");
    const created = await heroku(["create", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    expect(created.code, created.stderr).toBe(0);
  });

  afterAll(async () => {
    if (user) await destroyApp(user.token, name);
  });

  it("deploys a Procfile app, streaming Heroku's build output, and the app answers through the router", async () => {
    expect((await git("remote", "get-url", "heroku")).stdout.trim()).toBe(`https://localhost:${platform().port}/${name}.git`);
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).toBe(0);
    const lines = res.stderr.split("\n").map((l) => l.trimEnd());
    const expected = [
      "remote: -----> Building on the Heroku-24 stack",
      "remote: -----> Launching...",
      "remote:        Released v2",
      `remote:        https://${name}.apps.localhost:${platform().port}/ deployed to dynoplane`,
      "remote: Verifying deploy... done.",
    ];
    const at = expected.map((l) => lines.indexOf(l));
    expect(
      at.every((i) => i >= 0),
      pushed(res),
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(res.stderr).toContain(" * [new branch]      main -> main");
    await answers("first deploy");
    const releases = await api(`/apps/${name}/releases`, { token: user.token });
    expect(releases.body.at(-1)).toMatchObject({ version: 2, description: expect.stringMatching(/^Deploy [0-9a-f]{8}$/), current: true });
    const buildList = await api(`/apps/${name}/builds`, { token: user.token });
    expect(buildList.body.map((b: any) => b.status)).toEqual(["succeeded"]);
    expect(buildList.body[0].release).toEqual({ id: releases.body.at(-1).id });
  });

  it("deploys a one-line change from a second, thin pack", async () => {
    // From here on git answers the challenge from ~/.netrc, as after `heroku login`: the CLI's
    // credential helper had its part in the first push.
    env = await gitPushEnv(home, user);
    const head = commit({ "index.html": page("second deploy") }, "second");
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).toBe(0);
    expect(res.stderr).toContain("remote:        Released v3");
    await answers("second deploy");
    const packs = await (await db())
      .select()
      .from(gitPacks)
      .where(eq(gitPacks.appId, (await appRow()).id))
      .orderBy(gitPacks.seq);
    expect(packs.map((p) => [p.seq, p.accepted])).toEqual([
      [1, true],
      [2, true],
    ]);
    // Only the new commit, tree and blob travel; the first push's objects are not resent.
    expect(packs[1]!.size!).toBeLessThan(packs[0]!.size!);
    expect((await appRow()).repoHead).toBe(head);
  });

  it("rejects a push whose build fails; the previous release keeps serving and the pack is never replayed", async () => {
    const before = (await appRow()).repoHead;
    commit({ Procfile: "web:\n", "index.html": page("broken deploy") }, "broken");
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).toBe(1);
    expect(res.stderr).toContain(" ! [remote rejected] main -> main (build failed)");
    expect(res.stderr).toMatch(/remote: {2}! {5}Push failed/);
    expect((await visit(name)).text).toContain("second deploy");
    expect((await appRow()).repoHead).toBe(before);
    const releases = await api(`/apps/${name}/releases`, { token: user.token });
    expect(releases.body.at(-1).version).toBe(3);

    // The next push (from the old head, so it resends the broken commit's objects too) builds without the refused pack.
    commit({ Procfile: PROCFILE, "index.html": page("fixed deploy") }, "fixed");
    const fixed = await git("push", "heroku", "main");
    expect(fixed.code, pushed(fixed)).toBe(0);
    await answers("fixed deploy");
    const d = await db();
    const appId = (await appRow()).id;
    const packs = await d.select().from(gitPacks).where(eq(gitPacks.appId, appId)).orderBy(gitPacks.seq);
    expect(packs.map((p) => [p.seq, p.accepted])).toEqual([
      [1, true],
      [2, true],
      [3, false],
      [4, true],
    ]);
    const [last] = await d.select().from(builds).where(eq(builds.packId, packs[3]!.id));
    expect((await packsForBuild(d, last!)).map((p) => p.seq)).toEqual([1, 2, 4]);
  });

  it("takes a push to another branch without building it, as Heroku does: the app keeps serving its release", async () => {
    const releases = async () => (await api(`/apps/${name}/releases`, { token: user.token })).body.length as number;
    const before = await releases();
    commit({ "index.html": page("only on feature") }, "feature work");
    const res = await git("push", "heroku", "HEAD:refs/heads/feature");
    expect(res.code, pushed(res)).toBe(0);
    expect(res.stderr).toContain("remote: Pushed to non-master branch, skipping build.");
    expect(res.stderr).toMatch(/\* \[new branch\]\s+HEAD -> feature/);
    expect(res.stderr).not.toContain("Building on");
    expect(await releases()).toBe(before);
    expect((await visit(name)).text).toContain("fixed deploy");
    // Then main deploys that commit as usual.
    const deployed = await git("push", "heroku", "main");
    expect(deployed.code, pushed(deployed)).toBe(0);
    await answers("only on feature");
  });

  it("streams build output as it happens: a line before a slow step arrives well before the push ends", async () => {
    const bp = slowBuildpack();
    const set = await api(`/apps/${name}/buildpack-installations`, {
      method: "PUT",
      token: user.token,
      body: { updates: [{ buildpack: bp }, { buildpack: "heroku/procfile" }] },
    });
    expect(set.status, set.text).toBe(200);
    commit({ "index.html": page("slow deploy") }, "slow");
    let firstAt = 0;
    let buffered = "";
    const res = await runGit(["push", "heroku", "main"], {
      cwd: repo,
      env,
      onStderr: (chunk) => {
        buffered += chunk;
        if (!firstAt && buffered.includes("Slow step starting")) firstAt = Date.now();
      },
    });
    const endedAt = Date.now();
    expect(res.code, pushed(res)).toBe(0);
    expect(res.stderr).toContain("remote: -----> Slow step done");
    expect(firstAt).toBeGreaterThan(0);
    expect(endedAt - firstAt).toBeGreaterThan(4_000);
    await answers("slow deploy");
  });

  it("stores a push larger than one R2 upload part (git probes, then streams it chunked) and deploys it", async () => {
    await api(`/apps/${name}/buildpack-installations`, { method: "PUT", token: user.token, body: { updates: [] } });
    // Random bytes do not compress, so the pack is larger than PART_BYTES.
    commit({ "big.txt": randomBytes(PART_BYTES * 1.5).toString("base64"), "index.html": page("big deploy") }, "big");
    const res = await git("push", "heroku", "main");
    expect(res.code, pushed(res)).toBe(0);
    await answers("big deploy");
    const packs = await (await db())
      .select()
      .from(gitPacks)
      .where(eq(gitPacks.appId, (await appRow()).id))
      .orderBy(gitPacks.seq);
    expect(packs.at(-1)!.size!).toBeGreaterThan(PART_BYTES);
    expect(packs.at(-1)!.accepted).toBe(true);
  });
});
