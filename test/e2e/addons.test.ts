import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { deploySlug, destroyApp } from "../support/slugs.ts";

// Heroku Postgres with the unmodified heroku CLI 11.10.0: addons:create (with --wait and
// --as), addons, addons:info, pg:info, pg:credentials:url, pg:psql (the
// machine's psql), pg:credentials:rotate and addons:destroy (the config vars they set are read through the API).

afterAll(closeDb);

async function connects(url: string): Promise<true | string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await client.end().catch(() => {});
  }
}

describe("heroku addons and pg commands", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const cli = (args: string[], input?: string) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 90_000, input });
  /** A config var as the app has it now ("" when unset), read through the API: the CLI's config:get is the foundation tests'. */
  const configVar = async (name: string) => {
    const res = await api(`/apps/${app.name}/config-vars`, { token: user.token });
    expect(res.status, res.text).toBe(200);
    return (res.body[name] as string | undefined) ?? "";
  };

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    await deploySlug(user.token, app.name);
  }, 600_000);

  afterAll(() => destroyApp(user.token, app.name));

  it("addons:create --wait provisions a database and sets DATABASE_URL; the seed's hobby-dev works too, --as a second name", async () => {
    const created = await cli(["addons:create", "heroku-postgresql:essential-0", "--wait"]);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    expect(created.stdout + created.stderr).toMatch(/Created postgresql-[a-z]+-\d+ as DATABASE_URL/);
    const url = await configVar("DATABASE_URL");
    expect(url).toMatch(/^postgres:\/\//);
    expect(await connects(url)).toBe(true);

    const extra = await cli(["addons:create", "heroku-postgresql:hobby-dev", "--as", "EXTRA", "--wait"]);
    expect(extra.code, extra.stdout + extra.stderr).toBe(0);
    expect(await configVar("EXTRA_URL")).toMatch(/^postgres:\/\//);

    const list = await cli(["addons"]);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain("heroku-postgresql (postgresql-");
    expect(list.stdout).toContain("essential-0");
    expect(list.stdout).toMatch(/as DATABASE/);
    expect(list.stdout).toMatch(/as EXTRA/);
  });

  it("addons:info and pg:info describe the database", async () => {
    const name = /postgresql-[a-z]+-\d+/.exec((await cli(["addons"])).stdout)![0];
    const info = await cli(["addons:info", name]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain(`=== ${name}`);
    expect(info.stdout).toMatch(/Plan:\s+heroku-postgresql:essential-0/);
    expect(info.stdout).toMatch(/State:\s+created/);
    const pgInfo = await cli(["pg:info", "DATABASE"]);
    expect(pgInfo.code, pgInfo.stderr).toBe(0);
    expect(pgInfo.stdout).toMatch(/=== HEROKU_POSTGRESQL_RED_URL, DATABASE_URL/);
    expect(pgInfo.stdout).toMatch(/Plan:\s+Essential 0/);
    expect(pgInfo.stdout).toMatch(/Status:\s+Available/);
    expect(pgInfo.stdout).toMatch(/Connections:\s+\d+\/20/);
    expect(pgInfo.stdout).toMatch(/Tables:\s+\d+/);
  });

  it("pg:credentials:url and pg:psql reach the database with its own credentials", async () => {
    const url = await configVar("DATABASE_URL");
    const creds = await cli(["pg:credentials:url", "DATABASE"]);
    expect(creds.code, creds.stderr).toBe(0);
    expect(creds.stdout).toContain(`user=${new URL(url).username}`);
    expect(creds.stdout).toContain(url.replace(/^postgres:/, "postgres:"));
    const psql = await cli(["pg:psql", "DATABASE", "-c", "create table users (name text); insert into users values ('ada'); select name from users"]);
    expect(psql.code, psql.stdout + psql.stderr).toBe(0);
    expect(psql.stdout).toContain("ada");
  });

  it("a dyno reaches its database with DATABASE_URL, and nothing else of the database server's host", async () => {
    const read = await cli(["run", "--no-tty", 'psql "$DATABASE_URL" -tAc "select name from users"']);
    expect(read.code, read.stdout + read.stderr).toBe(0);
    expect(read.stdout.trim()).toBe("ada");
    // The same address on any other port (the control plane's Postgres listens on the host too): closed.
    const url = new URL(await configVar("DATABASE_URL"));
    const control = new URL(platform().databaseUrl);
    const probe = `timeout 5 psql "postgres://x:y@${url.hostname}:${control.port}/postgres?connect_timeout=3" -c "select 1" 2>&1; echo "exit=$?"`;
    const scan = await cli(["run", "--no-tty", probe]);
    expect(scan.stdout).toMatch(/exit=[1-9]/);
    expect(scan.stdout).not.toMatch(/password authentication failed/); // never reached a server
  });

  it("pg:credentials:rotate gives the app a new URL and the old one stops working", async () => {
    const before = await configVar("DATABASE_URL");
    const rotated = await cli(["pg:credentials:rotate", "DATABASE", "--confirm", app.name]);
    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    const after = await configVar("DATABASE_URL");
    expect(after).not.toBe(before);
    expect(await connects(before)).toMatch(/password authentication failed/);
    expect(await connects(after)).toBe(true);
    const psql = await cli(["pg:psql", "DATABASE", "-c", "select name from users"]);
    expect(psql.stdout).toContain("ada");
    const releases = await api(`/apps/${app.name}/releases`, { token: user.token });
    expect(releases.body.at(-1).description).toBe("Update DATABASE by heroku-postgresql");
  });

  it("addons:destroy --confirm drops the database and its config vars", async () => {
    const extraUrl = await configVar("EXTRA_URL");
    const name = /(postgresql-[a-z]+-\d+).*\n.*as EXTRA/.exec((await cli(["addons"])).stdout)?.[1];
    expect(name).toBeDefined();
    const destroyed = await cli(["addons:destroy", name!, "--confirm", app.name]);
    expect(destroyed.code, destroyed.stdout + destroyed.stderr).toBe(0);
    expect(await configVar("EXTRA_URL")).toBe("");
    expect(await connects(extraUrl)).toMatch(/password authentication failed|does not exist/);
    expect(await configVar("DATABASE_URL")).toMatch(/^postgres:\/\//);
  });
});
