import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tlsAgent } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, herokuPty, makeCliHome } from "../support/heroku-cli.ts";
import { appUrl, destroyApp, waitFor } from "../support/slugs.ts";

// The seed's walk with a database: a Flask app with Flask-SQLAlchemy reads DATABASE_URL
// (with the postgres:// → postgresql:// fix SQLAlchemy needs), `heroku run python` creates
// its tables by hand, web requests store and list rows, and `app.db.engine.execute(...)` at
// the prompt shows them; a restart and a credential rotation keep the rows and the app.

afterAll(closeDb);

beforeAll(() => ensureHerokuCli(), 600_000);

const FLASK_APP = {
  "app.py": [
    "import os",
    "from flask import Flask, jsonify, request",
    "from flask_sqlalchemy import SQLAlchemy",
    "",
    "app = Flask(__name__)",
    "url = os.environ['DATABASE_URL']",
    "if url.startswith('postgres://'):",
    "    url = url.replace('postgres://', 'postgresql://', 1)",
    "app.config['SQLALCHEMY_DATABASE_URI'] = url",
    "db = SQLAlchemy(app)",
    "app.app_context().push()",
    "",
    "class User(db.Model):",
    "    __tablename__ = 'users'",
    "    id = db.Column(db.Integer, primary_key=True)",
    "    name = db.Column(db.String(80), nullable=False)",
    "",
    "def create_all():",
    "    db.create_all()",
    "",
    "@app.route('/users', methods=['POST'])",
    "def add_user():",
    "    db.session.add(User(name=request.form['name']))",
    "    db.session.commit()",
    "    return 'added'",
    "",
    "@app.route('/users')",
    "def users():",
    "    return jsonify([u.name for u in User.query.order_by(User.id)])",
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
    'flask-sqlalchemy = "*"',
    'psycopg2 = "*"',
    'gunicorn = "*"',
    "",
  ].join("\n"),
  Procfile: "web: gunicorn app:app\n",
};

describe("a Flask app with Heroku Postgres, as the seed builds it", { timeout: 300_000 }, () => {
  let user: TestAccount;
  let home: string;
  let repo: string;
  let env: Record<string, string>;
  const name = appName("flaskdb");
  const cli = (args: string[]) => heroku([...args, "--app", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token }, timeoutMs: 120_000 });
  const users = async () => {
    const res = await fetch(appUrl(name, "/users"), { dispatcher: tlsAgent() });
    return res.status === 200 ? ((await res.json()) as string[]) : null;
  };
  const addUser = async (who: string) => {
    const res = await fetch(appUrl(name, "/users"), { method: "POST", body: new URLSearchParams({ name: who }), dispatcher: tlsAgent() });
    expect(res.status, await res.text()).toBe(200);
  };
  /** `heroku run python` on a terminal: runs each line at the prompt, returns what was printed. */
  const atPrompt = async (lines: string[]) => {
    const session = await herokuPty(["run", "python", "--app", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    await session.expect(/>>> $/, 60_000);
    for (const line of lines) {
      session.write(`${line}\r`);
      await session.expect(/>>> $/, 30_000);
    }
    session.write("exit()\r");
    const { code, output } = await session.exited(30_000);
    expect(code, output).toBe(0);
    return output;
  };

  beforeAll(async () => {
    user = await makeAccount();
    home = makeCliHome();
    repo = path.join(home, "project");
    mkdirSync(repo);
    env = await gitPushEnv(home, user);
    execFileSync("git", ["init", "-q", "-b", "main"], { cwd: repo, env });
    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), FLASK_APP, "first");
    const created = await heroku(["create", name], { home, cwd: repo, env: { HEROKU_API_KEY: user.token } });
    expect(created.code, created.stderr).toBe(0);
  });

  afterAll(async () => {
    if (user) await destroyApp(user.token, name);
  });

  it("adds a database, deploys, creates its tables through heroku run python, and stores and lists rows", async () => {
    const addon = await cli(["addons:create", "heroku-postgresql:hobby-dev", "--wait"]);
    expect(addon.code, addon.stdout + addon.stderr).toBe(0);
    const push = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 200_000 });
    expect(push.code, push.stderr).toBe(0);
    await atPrompt(["import app", "app.create_all()"]);
    await waitFor("the app to answer /users", async () => (await users()) !== null, 120_000);
    await addUser("ada");
    await addUser("grace");
    expect(await users()).toEqual(["ada", "grace"]);
    const printed = await atPrompt(["import app", "print(list(app.db.engine.execute('select * from users')))"]);
    expect(printed).toContain("[(1, 'ada'), (2, 'grace')]");
  });

  it("keeps the rows and answers after a restart, a credential rotation (the app reconnects with the new URL) and a new deploy", async () => {
    const restart = await cli(["ps:restart"]);
    expect(restart.code, restart.stderr).toBe(0);
    await waitFor("the app back after the restart", async () => (await users())?.length === 2, 120_000);
    const before = (await cli(["config:get", "DATABASE_URL"])).stdout.trim();
    const rotated = await cli(["pg:credentials:rotate", "--confirm", name]);
    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    expect((await cli(["config:get", "DATABASE_URL"])).stdout.trim()).not.toBe(before);
    await waitFor(
      "the app answering with the new credentials",
      async () => {
        const res = await fetch(appUrl(name, "/users"), { method: "POST", body: new URLSearchParams({ name: "linus" }), dispatcher: tlsAgent() }).catch(
          () => null,
        );
        return res?.status === 200;
      },
      120_000,
    );
    expect(await users()).toEqual(["ada", "grace", "linus"]);
    // A new deploy: new dynos, the same database.
    commitFiles(repo, (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }), { "README.md": "users\n" }, "second");
    const push = await runGit(["push", "heroku", "main"], { cwd: repo, env, timeoutMs: 200_000 });
    expect(push.code, push.stderr).toBe(0);
    await waitFor("the new release answering with the same rows", async () => (await users())?.length === 3, 120_000);
  });
});
