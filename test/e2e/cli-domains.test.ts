import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { visitHost } from "../support/api.ts";
import { appName, closeDb, makeAccount, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { deploySlug, destroyApp, waitFor } from "../support/slugs.ts";

// `heroku domains` and `certs` with the unmodified CLI against the local platform: a custom
// domain is added (and waited for), listed with the DNS target to point at, answered by the
// router with the app, and removed.

afterAll(closeDb);

describe("heroku domains", { timeout: 180_000 }, () => {
  let user: TestAccount;
  let home: string;
  const name = appName("dom");
  const host = `www.${name}.test`;
  const cli = (args: string[]) => heroku([...args, "--app", name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    const created = await heroku(["apps:create", name], { home, env: { HEROKU_API_KEY: user.token } });
    expect(created.code, created.stderr).toBe(0);
    await deploySlug(user.token, name);
  }, 600_000);

  afterAll(() => destroyApp(user.token, name));

  it("domains:add --wait gives the DNS target, domains lists it, and the router answers it with the app", async () => {
    const added = await cli(["domains:add", host, "--wait"]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`Configure your app's DNS provider to point to the DNS Target ${name}.apps.localhost`);
    const listed = await cli(["domains"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${name} Heroku Domain`);
    expect(listed.stdout).toContain(`${name}.apps.localhost`);
    expect(listed.stdout).toContain(`${name} Custom Domains`);
    expect(listed.stdout.split("\n").some((line) => line.includes(host) && line.includes("CNAME") && line.includes(`${name}.apps.localhost`))).toBe(true);
    const info = await cli(["domains:info", host]);
    expect(info.stdout).toMatch(/status:\s+succeeded/i);
    const answer = await waitFor("the custom domain answered", async () => {
      const res = await visitHost(host);
      return res.status === 200 && JSON.parse(res.text).args[0] === name ? res : false;
    });
    expect(JSON.parse(answer.text).dyno).toBe("web.1");
  });

  it("certs says the platform holds no uploaded certificates; domains:remove stops the routing", async () => {
    const certs = await cli(["certs"]);
    expect(certs.code, certs.stderr).toBe(0);
    expect(certs.stdout).toContain(`${name} has no SSL certificates.`);
    const removed = await cli(["domains:remove", host]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await cli(["domains"])).stdout).not.toContain(host);
    await waitFor("the removed domain no longer answered by the app", async () => (await visitHost(host)).status !== 200);
  });

  it("refuses a name that is not a domain, saying why", async () => {
    const bad = await cli(["domains:add", "not a domain"]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("is not a domain name");
    expect((await cli(["domains"])).stdout).not.toContain("not a domain");
  });
});
