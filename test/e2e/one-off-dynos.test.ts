import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform, tlsAgent } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, herokuPty, makeCliHome } from "../support/heroku-cli.ts";
import { logSessionUrl } from "../support/log-app.ts";
import { deploySlug, destroyApp, listDynos, waitFor } from "../support/slugs.ts";

// One-off dynos with the unmodified heroku CLI 11.10.0: `heroku run` (attached, through the
// agent's rendezvous server, on pipes and under a terminal), `heroku run:detached`,
// `heroku ps`, `heroku ps:stop`, and the time to live, against the platform's own host agent.

afterAll(closeDb);

describe("one-off dynos", { timeout: 120_000 }, () => {
  let user: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const cli = (args: string[], input?: string) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token }, timeoutMs: 60_000, input });
  const pty = (args: string[]) => herokuPty([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: user.token } });
  /** The one-off dyno running `command`, once it is up. */
  const upRun = (command: string) =>
    waitFor(
      `a run dyno for ${command} up`,
      async () => (await listDynos(user.token, app.name)).find((d) => d.type === "run" && d.command === command && d.state === "up"),
      60_000,
      250,
    );
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

  it("heroku run prints the app's config from the dyno, and -x carries the command's exit status", async () => {
    const echo = await cli(["run", "echo $GREETING from $DYNO"]);
    expect(echo.code, echo.stderr).toBe(0);
    expect(echo.stdout).toMatch(/^merhaba from run\.\d{4}$/m);
    expect(echo.stderr).toMatch(/Running echo \$GREETING from \$DYNO on .*up, run\.\d{4}/);
    const three = await cli(["run", "-x", "exit 3"]);
    expect(three.code, three.stdout + three.stderr).toBe(3);
    const zero = await cli(["run", "-x", "true"]);
    expect(zero.code, zero.stdout + zero.stderr).toBe(0);
    // The run ends with its command: nothing is left among the app's dynos.
    await waitFor("the runs gone", async () => !(await listDynos(user.token, app.name)).some((d) => d.type === "run"), 30_000, 250);
  });

  it("heroku run --no-tty hands piped stdin to the command until it ends", async () => {
    const res = await cli(["run", "--no-tty", "node"], 'console.log("from stdin: " + process.env.GREETING)\n');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("from stdin: merhaba");
  });

  it("heroku run bash under a terminal: ls shows the app's files, exit returns", async () => {
    const session = await pty(["run", "bash"]);
    await session.expect(/up, run\.\d{4}/);
    await session.expect(/\$ $/);
    session.write("ls\r");
    const listing = await session.expect(/Procfile[\s\S]*\$ $/);
    expect(listing[0]).toContain("server.js");
    session.write("echo $GREETING-$DYNO\r");
    await session.expect(/merhaba-run\.\d{4}/);
    session.write("exit\r");
    expect((await session.exited(30_000)).code).toBe(0);
  });

  it("heroku ps lists an attached run while it runs; heroku ps:kill ends it and the CLI returns", async () => {
    const session = await pty(["run", "sleep 60"]);
    const dyno = await upRun("sleep 60");
    const ps = await cli(["ps"]);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).toContain(dyno.name);
    expect(ps.stdout).toContain("sleep 60");
    const stop = await cli(["ps:kill", dyno.name]);
    expect(stop.code, stop.stderr).toBe(0);
    await session.exited(30_000);
    await waitFor(`${dyno.name} gone`, async () => !(await listDynos(user.token, app.name)).some((d) => d.name === dyno.name), 30_000, 250);
  });

  it("runs as a hostile tenant finds it: the app's own unprivileged uid, its own processes, none of the host's files", async () => {
    const probe = [
      "echo uid=$(id -u)",
      "echo procs=$(ls /proc | grep -c '^[0-9]')",
      "echo app=$(ls /app | tr '\\n' ' ')",
      `ls ${platform().home} >/dev/null 2>&1 && echo home=visible || echo home=hidden`,
      "cat /etc/shadow >/dev/null 2>&1 && echo shadow=read || echo shadow=refused",
    ].join("; ");
    const res = await cli(["run", probe]);
    expect(res.code, res.stderr).toBe(0);
    const uid = Number(/uid=(\d+)/.exec(res.stdout)?.[1]);
    expect(uid).toBeGreaterThan(0);
    expect(Number(/procs=(\d+)/.exec(res.stdout)?.[1])).toBeLessThan(10); // the dyno's own few, not the host's
    expect(res.stdout).toMatch(/app=.*server\.js/);
    expect(res.stdout).toContain("home=hidden"); // the platform's home: every other app's slugs and dynos
    expect(res.stdout).toContain("shadow=refused");
  });

  it("ends the dyno within seconds when the client's connection drops", async () => {
    const session = await pty(["run", "sleep 600"]);
    const dyno = await upRun("sleep 600");
    session.kill();
    await waitFor(`${dyno.name} gone`, async () => !(await listDynos(user.token, app.name)).some((d) => d.name === dyno.name), 15_000, 250);
    expect((await logsOf(dyno.name)).some((x) => x.endsWith(`heroku[${dyno.name}]: The client disconnected; stopping the dyno`))).toBe(true);
  });

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
    // Run once: it is not started again. `heroku logs --dyno` shows the same.
    const again = await logsOf(name!);
    expect(again.filter((x) => x.includes(`heroku[${name}]: Starting process`))).toHaveLength(1);
    const logs = await cli(["logs", "--dyno", name!, "--num", "200"]);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toMatch(new RegExp(`app\\[${name!.replace(".", "\\.")}\\]: done merhaba from ${name!.replace(".", "\\.")}`));
    expect(logs.stdout).toContain(`heroku[${name}]: Process exited with status 2`);
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
