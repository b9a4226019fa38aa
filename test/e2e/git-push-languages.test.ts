import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, herokuPty, makeCliHome } from "../support/heroku-cli.ts";
import { destroyApp, visit, waitFor } from "../support/slugs.ts";

// `git push heroku main` of apps in each built-in language, as the seed walkthrough does:
// a Flask app with a Pipfile, runtime.txt and `web: gunicorn app:app`, and a Node.js app.

afterAll(closeDb);

const FLASK_APP = {
  "app.py": [
    "import os",
    "from flask import Flask, jsonify",
    "app = Flask(__name__)",
    "@app.route('/')",
    "def index():",
    "    return jsonify(framework='flask', dyno=os.environ.get('DYNO'), greeting=os.environ.get('GREETING'))",
    "",
  ].join("\n"),
  Pipfile: [
    "[[source]]",
    'url = "https://pypi.org/simple"',
    "verify_ssl = true",
    'name = "pypi"',
    "",
    "[packages]",
    'flask = "*"',
    'gunicorn = ">=20.0"',
    "",
    "[requires]",
    'python_version = "3.11"',
    "",
  ].join("\n"),
  "runtime.txt": "python-3.11.7\n",
  Procfile: "web: gunicorn app:app\n",
};

const NODE_APP = {
  "package.json": JSON.stringify({ name: "node-sample", version: "1.0.0", engines: { node: ">=18" }, scripts: { start: "node server.js" } }, null, 2),
  "server.js": [
    "const http = require('http');",
    "http.createServer((req, res) => {",
    "  res.setHeader('content-type', 'application/json');",
    "  res.end(JSON.stringify({ framework: 'node', dyno: process.env.DYNO }));",
    "}).listen(process.env.PORT);",
    "",
  ].join("\n"),
};

// Installing the CLI on first use takes about a minute.
beforeAll(() => ensureHerokuCli(), 600_000);

describe.each([
  ["a Flask app with a Pipfile and gunicorn", "flask", FLASK_APP, [/-----> Python app detected/, /Procfile declares types +-> web/]],
  ["a Node.js app with package.json", "node", NODE_APP, [/-----> Node\.js app detected/, /Default types for buildpack -> web/]],
])("git push heroku main of %s", { timeout: 240_000 }, (_label, framework, files, expectedLines) => {
  let user: TestAccount;
  let home: string;
  let repo: string;
  let env: Record<string, string>;
  const name = appName(framework);

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, user);
    execFileSync("git", ["init", "-q", "-b", "main"], { cwd: repo, env });
    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), files, "first");
    // The app and its remote as `heroku create` makes them (that command's own test is git-push.test.ts).
    await makeApp(user, name);
    execFileSync("git", ["remote", "add", "heroku", `https://${platform().cliEnv.HEROKU_GIT_HOST}/${name}.git`], { cwd: repo, env });
  });

  afterAll(async () => {
    if (user) await destroyApp(user.token, name);
  });

  it("builds with the right buildpack and answers through the router with its own content", async () => {
    const res = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 200_000 });
    expect(res.code, res.stderr).toBe(0);
    for (const line of expectedLines) expect(res.stderr).toMatch(line);
    expect(res.stderr).toMatch(/remote: +Released v\d+/);
    const answer = await waitFor(
      "the app to answer",
      async () => {
        const page = await visit(name);
        return page.status === 200 && page.json?.framework === framework ? page.json : undefined;
      },
      120_000,
    );
    expect(answer).toMatchObject({ framework, dyno: "web.1" });
  });

  it("picks up a config change on the restarted dynos", async () => {
    const set = await heroku(["config:set", "GREETING=merhaba", "-a", name], { home, env: { HEROKU_API_KEY: user.token } });
    expect(set.code, set.stderr).toBe(0);
    if (framework !== "flask") return;
    const answer = await waitFor(
      "the new config",
      async () => {
        const page = await visit(name);
        return page.json?.greeting === "merhaba" ? page.json : undefined;
      },
      120_000,
    );
    expect(answer.greeting).toBe("merhaba");
  });

  // The seed's walk: `heroku run python` in the app's repo, `import app`, and the app's code is there.
  it.runIf(framework === "flask")("heroku run python opens a prompt in the app's virtualenv, where `import app` reaches the app's code", async () => {
    const session = await herokuPty(["run", "python"], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    await session.expect(/up, run\.\d{4}/, 60_000);
    await session.expect(/>>> $/, 30_000);
    session.write("import app\r");
    await session.expect(/>>> $/, 30_000);
    session.write("print(app.app.name, app.os.environ['GREETING'])\r");
    await session.expect(/\napp merhaba\r?\n>>> $/, 30_000);
    session.write("exit()\r");
    expect((await session.exited(30_000)).code).toBe(0);
    // And piped, without a terminal: the program reads its input to the end.
    const piped = await heroku(["run", "--no-tty", "python"], {
      home,
      cwd: repo,
      env: { HEROKU_API_KEY: user.token },
      input: 'import os; print(os.environ["GREETING"])\n',
    });
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.trim()).toBe("merhaba");
  });
});
