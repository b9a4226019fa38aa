import { createHmac } from "node:crypto";
import https from "node:https";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, fireCron, platform } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { commitFiles, runGit } from "../support/git.ts";
import { ensureHerokuCli, gitPushEnv, heroku, makeCliHome } from "../support/heroku-cli.ts";
import { deploySlug, destroyApp, waitFor } from "../support/slugs.ts";

// App webhooks with the unmodified CLI: a local HTTPS receiver (allowed by configuration, as
// drains are) gets the app's events signed with Heroku-Webhook-Hmac-SHA256, checks the
// signature, and a sync webhook is retried after a failure.

/** A receiver on the platform's allowed drain port, with its certificate; answers `status()` and keeps every request. */
class Receiver {
  requests: Array<{ path: string; headers: Record<string, string | string[] | undefined>; body: string }> = [];
  status = () => 204;
  private server?: https.Server;

  async up(): Promise<void> {
    const tls = path.join(platform().home, "tls");
    this.server = https.createServer({ cert: readFileSync(path.join(tls, "server.pem")), key: readFileSync(path.join(tls, "server.key")) }, (req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        this.requests.push({ path: req.url ?? "", headers: req.headers, body });
        res.writeHead(this.status()).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(platform().webhookPort, "127.0.0.1", resolve));
  }

  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }

  events(resource: string) {
    return this.requests.map((r) => ({ ...r, json: JSON.parse(r.body) })).filter((r) => r.json.resource === resource);
  }
}

afterAll(closeDb);

describe("app webhooks", { timeout: 240_000 }, () => {
  let owner: TestAccount;
  let app: { id: string; name: string };
  let home: string;
  const receiver = new Receiver();
  const url = () => `https://127.0.0.1:${platform().webhookPort}/hooks`;
  const cli = (args: string[]) => heroku([...args, "-a", app.name], { home, env: { HEROKU_API_KEY: owner.token } });

  beforeAll(async () => {
    await ensureHerokuCli();
    owner = await makeAccount();
    app = await makeApp(owner);
    home = makeCliHome();
    await deploySlug(owner.token, app.name);
    await receiver.up();
  }, 600_000);

  afterAll(async () => {
    await receiver.down();
    await destroyApp(owner.token, app.name);
  });

  it("webhooks:add prints the signing secret once, and a release reaches the receiver signed with it", async () => {
    const added = await cli(["webhooks:add", "-i", "api:release,api:formation", "-l", "notify", "-u", url()]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain("Webhooks Signing Secret");
    const secret = added.stdout.trim().split("\n").at(-1)!.trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    const listed = await cli(["webhooks"]);
    expect(listed.stdout).toContain(url());
    expect(listed.stdout).toContain("api:release,api:formation");
    // The secret is not readable again.
    expect(JSON.stringify((await api(`/apps/${app.name}/webhooks`, { token: owner.token })).body)).not.toContain(secret);

    // The changes that make events are the API's (the CLI's own commands for them are the foundation tests').
    expect((await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: "hooked" } })).status).toBe(200);
    const [release] = await waitFor("the release event", () => receiver.events("release").length > 0 && receiver.events("release"));
    expect(release!.json).toMatchObject({ action: "create", resource: "release", actor: { email: owner.email }, data: { app: { name: app.name } } });
    expect(release!.json.data.description).toContain("GREETING");
    const signature = createHmac("sha256", secret).update(release!.body).digest("base64");
    expect(release!.headers["heroku-webhook-hmac-sha256"]).toBe(signature);
    // Entities not subscribed to are not sent; subscribed ones are.
    expect((await api(`/apps/${app.name}/formation/web`, { method: "PATCH", token: owner.token, body: { quantity: 0 } })).status).toBe(200);
    await waitFor("the formation event", () => receiver.events("formation").length > 0);
    expect(receiver.events("formation")[0]!.json.data).toMatchObject({ type: "web", quantity: 0 });
    expect(receiver.events("dyno")).toEqual([]);

    const deliveries = await cli(["webhooks:deliveries"]);
    expect(deliveries.code, deliveries.stderr).toBe(0);
    expect(deliveries.stdout).toMatch(/succeeded/);
    const events = await cli(["webhooks:events"]);
    expect(events.stdout).toMatch(/release\s+create/);
  });

  it("retries a sync webhook's failed delivery with back-off, on the scheduled run", async () => {
    const [existing] = (await api(`/apps/${app.name}/webhooks`, { token: owner.token })).body;
    const patched = await api(`/apps/${app.name}/webhooks/${existing.id}`, {
      method: "PATCH",
      token: owner.token,
      body: { level: "sync", include: ["api:app"] },
    });
    expect(patched.body).toMatchObject({ level: "sync", include: ["api:app"] });
    receiver.status = () => 503;
    expect((await api(`/apps/${app.name}`, { method: "PATCH", token: owner.token, body: { maintenance: true } })).status).toBe(200);
    const failed = await waitFor("a retrying delivery", async () => {
      const list = (await api(`/apps/${app.name}/webhook-deliveries`, { token: owner.token })).body;
      return list.find((d: any) => d.event.include === "api:app" && d.status === "retrying");
    });
    expect(failed).toMatchObject({ num_attempts: 1, webhook: { level: "sync" }, last_attempt: { code: 503, status: "failed" } });
    expect(Date.parse(failed.next_attempt_at)).toBeGreaterThan(Date.now());
    receiver.status = () => 200;
    // The first retry is due 15 s later; the next scheduled run makes it (fired here by hand,
    // again while another run of the shared test platform may still hold the handler).
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(failed.next_attempt_at) - Date.now()) + 500));
    let last: any;
    const done = await waitFor(
      () => `the retried delivery (last seen: ${JSON.stringify(last)})`,
      async () => {
        await fireCron();
        last = (await api(`/apps/${app.name}/webhook-deliveries/${failed.id}`, { token: owner.token })).body;
        return last.status === "succeeded" && last;
      },
      150_000,
      5_000,
    );
    expect(done).toMatchObject({ num_attempts: 2, last_attempt: { code: 200 } });
    const attempts = receiver.events("app").filter((r) => r.json.id === receiver.events("app")[0]!.json.id);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]!.body.replace(/"webhook_metadata":.*$/, "")).toBe(attempts[1]!.body.replace(/"webhook_metadata":.*$/, ""));
  });

  it("tells a dyno webhook each state its app's dynos pass through", async () => {
    const made = await api(`/apps/${app.name}/webhooks`, {
      method: "POST",
      token: owner.token,
      body: { url: `${url()}/dynos`, include: ["dyno"], level: "notify" },
    });
    expect(made.status).toBe(201);
    receiver.status = () => 204;
    expect((await api(`/apps/${app.name}/formation/web`, { method: "PATCH", token: owner.token, body: { quantity: 1 } })).status).toBe(200);
    const states = () => receiver.events("dyno").map((r) => [r.json.data.name, r.json.data.state]);
    await waitFor("web.1 up, as a dyno event", () => states().some(([name, state]) => name === "web.1" && state === "up"), 60_000);
    expect(receiver.events("dyno")[0]!.json).toMatchObject({ action: "update", resource: "dyno", data: { app: { name: app.name } } });
    // One event per change: no state is told twice in a row.
    const told = states()
      .filter(([name]) => name === "web.1")
      .map(([, state]) => state);
    expect(told.filter((s, i) => i > 0 && s === told[i - 1])).toEqual([]);
    await api(`/apps/${app.name}/webhooks/${made.body.id}`, { method: "DELETE", token: owner.token });
  });

  it("delivers a push's api:build and api:release events before git push returns", async () => {
    const made = await api(`/apps/${app.name}/webhooks`, {
      method: "POST",
      token: owner.token,
      body: { url: `${url()}/push`, include: ["api:build", "api:release"], level: "notify" },
    });
    expect(made.status).toBe(201);
    receiver.status = () => 204;
    const repo = path.join(home, "push");
    mkdirSync(repo);
    const env = await gitPushEnv(home, owner);
    const git = (...args: string[]) => runGit(args, { cwd: repo, env, timeoutMs: 150_000 });
    await git("init", "-q", "-b", "main");
    commitFiles(
      repo,
      (...args) => execFileSync("git", args, { cwd: repo, env, encoding: "utf8" }),
      { Procfile: "web: python3 -m http.server $PORT\n" },
      "hooked",
    );
    const remote = await heroku(["git:remote", "-a", app.name], { home, cwd: repo, env: { HEROKU_API_KEY: owner.token } });
    expect(remote.code, remote.stderr).toBe(0);
    const pushed = await git("push", "heroku", "main");
    expect(pushed.code, pushed.stderr).toBe(0);
    // No waiting: the push has returned, and its events have been delivered.
    const ours = receiver.requests.filter((r) => r.path === "/hooks/push").map((r) => JSON.parse(r.body));
    const build = ours.filter((e) => e.resource === "build");
    expect(build.map((e) => [e.action, e.data.status])).toEqual([
      ["create", "pending"],
      ["update", "succeeded"],
    ]);
    const release = ours.filter((e) => e.resource === "release");
    expect(release.map((e) => e.action)).toEqual(["create"]);
    expect(release[0]!.data.id).toBe(build[1]!.data.release.id);
    expect(release[0]!.data.description).toMatch(/^Deploy [0-9a-f]{8}$/);
    await api(`/apps/${app.name}/webhooks/${made.body.id}`, { method: "DELETE", token: owner.token });
  });

  it("refuses a webhook to a private host, without https, for an unknown entity or level; webhooks:remove removes one", async () => {
    const before = (await api(`/apps/${app.name}/webhooks`, { token: owner.token })).body;
    for (const body of [
      { url: "https://10.0.0.1/hooks", include: ["api:release"], level: "notify" },
      { url: "https://localhost./hooks", include: ["api:release"], level: "notify" },
      { url: "http://hooks.example.com/", include: ["api:release"], level: "notify" },
      { url: "https://hooks.example.com/", include: ["api:everything"], level: "notify" },
      { url: "https://hooks.example.com/", include: [], level: "notify" },
      { url: "https://hooks.example.com/", include: ["dyno"], level: "often" },
    ]) {
      const res = await api(`/apps/${app.name}/webhooks`, { method: "POST", token: owner.token, body });
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body).toMatchObject({ id: "invalid_params", message: expect.any(String) });
    }
    expect((await api(`/apps/${app.name}/webhooks`, { token: owner.token })).body).toEqual(before);
    const removed = await cli(["webhooks:remove", before[0].id]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await api(`/apps/${app.name}/webhooks`, { token: owner.token })).body).toEqual([]);
  });
});
