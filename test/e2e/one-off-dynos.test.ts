import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, tlsAgent } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { logSessionUrl } from "../support/log-app.ts";
import { deploySlug, destroyApp, listDynos, waitFor } from "../support/slugs.ts";

// One-off dynos with the unmodified heroku CLI 11.10.0: `heroku run:detached`, `heroku ps`,
// `heroku ps:stop`, and the time to live, against the platform's own host agent.

afterAll(closeDb);

describe("one-off dynos", { timeout: 120_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000 });
  /** The app's log lines of one dyno, as `heroku logs --dyno` reads them. */
  const logsOf = async (dyno: string) => {
    const url = await logSessionUrl(user.token, app.name, { dyno, lines: 200 });
    return (await fetch(url, { dispatcher: tlsAgent() }).then((r) => r.text())).split("\n");
  };

  beforeAll(async () => {
    await ensureHerokuCli();
    user = await makeAccount();
    home = makeCliHome();
    app = await makeApp(user);
    await deploySlug(user.token, app.name);
    const set = await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: user.token, body: { GREETING: "merhaba" } });
    expect(set.status).toBe(200);
  }, 600_000);

  afterAll(() => destroyApp(user.token, app.name));

  it("run:detached runs the command once with the app's config; its output and exit status are in the log; then it is gone", async () => {
    const res = await cli(["run:detached", "echo done $GREETING from $DYNO; exit 2"]);
    expect(res.code, res.stderr).toBe(0);
    const name = /run\.\d{4}/.exec(res.stdout + res.stderr)?.[0];
    expect(name, res.stdout + res.stderr).toBeDefined();
    const lines = await waitFor(
      `${name}'s output and exit status in the log`,
      async () => {
        const l = await logsOf(name!);
        return l.some((x) => x.endsWith(`app[${name}]: done merhaba from ${name}`)) &&
          l.some((x) => x.endsWith(`heroku[${name}]: Process exited with status 2`))
          ? l
          : false;
      },
      60_000,
      500,
    );
    expect(lines.some((x) => x.includes(`heroku[${name}]: Starting process with command \`echo done $GREETING from $DYNO; exit 2\``))).toBe(true);
    expect(lines.some((x) => x.endsWith(`heroku[${name}]: State changed from up to complete`))).toBe(true);
    await waitFor(`${name} gone from the dynos`, async () => !(await listDynos(user.token, app.name)).some((d) => d.name === name), 30_000, 500);
    // Run once: it is not started again.
    const again = await logsOf(name!);
    expect(again.filter((x) => x.includes(`heroku[${name}]: Starting process`))).toHaveLength(1);
  });

  it("heroku ps lists a running one; heroku ps:stop ends it", async () => {
    const res = await cli(["run:detached", "sleep 600"]);
    const name = /run\.\d{4}/.exec(res.stdout + res.stderr)![0];
    await waitFor(`${name} up`, async () => (await listDynos(user.token, app.name)).some((d) => d.name === name && d.state === "up"), 60_000, 500);
    const ps = await cli(["ps"]);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toContain(name);
    expect(ps.stdout).toContain("sleep 600");
    const stop = await cli(["ps:stop", name]);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(`${name} gone`, async () => !(await listDynos(user.token, app.name)).some((d) => d.name === name), 60_000, 500);
    expect((await logsOf(name)).some((x) => x.endsWith(`heroku[${name}]: Stopping all processes with SIGTERM`))).toBe(true);
  });

  it("ends a one-off dyno when its time to live is over", async () => {
    const res = await api(`/apps/${app.name}/dynos`, { method: "POST", token: user.token, body: { command: "sleep 600", attach: false, time_to_live: 3 } });
    expect(res.status, res.text).toBe(201);
    const name = res.body.name as string;
    await waitFor(`${name} ended by its time to live`, async () => (await logsOf(name)).some((x) => x.includes("its time to live (3 s) is over")), 60_000, 500);
    await waitFor(`${name} gone`, async () => !(await listDynos(user.token, app.name)).some((d) => d.name === name), 60_000, 500);
  });
});
