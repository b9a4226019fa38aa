import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";

// `heroku authorizations:rotate`, `heroku sessions` and `sessions:destroy` with the unmodified CLI.

afterAll(closeDb);

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("tokens and sessions with the heroku CLI", { timeout: 120_000 }, () => {
  let user: TestAccount;
  let home: string;
  const cli = (args: string[]) => heroku(args, { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
  }, 300_000);

  it("authorizations:rotate prints a new token; the old one stops working and the new one works", async () => {
    const created = await cli(["authorizations:create", "--description", "deploy bot", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const auth = JSON.parse(created.stdout);
    const oldToken = auth.access_token.token;
    expect((await api("/account", { token: oldToken })).status).toBe(200);

    const rotated = await cli(["authorizations:rotate", auth.id]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const token = /^Token:\s+(\S+)$/m.exec(rotated.stdout)?.[1];
    expect(token, rotated.stdout).toMatch(/^dpl_/);
    expect(token).not.toBe(oldToken);
    expect(rotated.stdout).toContain("deploy bot");
    expect((await api("/account", { token: oldToken })).status).toBe(401);
    expect((await api("/account", { token })).status).toBe(200);

    const stranger = await makeAccount();
    const theirs = await heroku(["authorizations:rotate", auth.id], { home: makeCliHome(), env: { HEROKU_API_KEY: stranger.token } });
    expect(theirs.code).not.toBe(0);
    expect(theirs.stderr).toContain("Couldn't find that authorization.");
    expect((await api("/account", { token })).status).toBe(200);
  });

  it("sessions lists the logins, and sessions:destroy ends one", async () => {
    const login = await api("/oauth/authorizations", {
      method: "POST",
      headers: { Authorization: basic(user.email, user.password) },
      body: { description: "Heroku CLI login from laptop", expires_in: 3600, scope: ["global"] },
    });
    expect(login.status).toBe(201);
    const listed = await cli(["sessions"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`Heroku CLI login from laptop\\s+${login.body.id}`));

    const destroyed = await cli(["sessions:destroy", login.body.id]);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect((await api("/account", { token: login.body.access_token.token })).status).toBe(401);
    expect((await cli(["sessions"])).stdout).not.toContain(login.body.id);
  });
});
