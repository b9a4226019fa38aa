import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { decodeJwt } from "jose";
import { dynos, hosts } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { api, tlsAgent } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { herokuSchema } from "../support/heroku-schema.ts";
import { logSessionUrl } from "../support/log-app.ts";
import { deploySlug, destroyApp } from "../support/slugs.ts";

afterAll(closeDb);

const runDynos = async (appId: string) => (await (await db()).select().from(dynos).where(eq(dynos.appId, appId))).filter((d) => d.type === "run");

describe("POST /apps/{app}/dynos (one-off dynos)", () => {
  it("starts run.N from the current release with the app's size, in Heroku's shape, listed with the app's dynos", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      await deploySlug(owner.token, app.name);
      const res = await api(`/apps/${app.name}/dynos`, {
        method: "POST",
        token: owner.token,
        body: { attach: false, command: "sleep 30", env: { TERM: "xterm", COLUMNS: 120 } },
      });
      expect(res.status, res.text).toBe(201);
      expect(herokuSchema().validateResponse("POST", `/apps/${app.name}/dynos`, res.body)).toEqual([]);
      expect(res.body).toMatchObject({ command: "sleep 30", type: "run", attach_url: null, app: { id: app.id, name: app.name } });
      expect(res.body.name).toMatch(/^run\.[1-9]\d{3}$/);
      const listed = await api(`/apps/${app.name}/dynos`, { token: owner.token });
      expect(listed.body.map((d: { name: string }) => d.name)).toContain(res.body.name);
      const [row] = await runDynos(app.id);
      expect(row).toMatchObject({ name: res.body.name, extraEnv: { TERM: "xterm", COLUMNS: "120" }, timeToLiveS: 86_400 });
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ["an empty command", { command: "  " }, /needs a command/],
    ["an unknown size", { command: "ls", size: "Huge-9X" }, /Size Huge-9X is not available/],
    ["a time to live of zero", { command: "ls", time_to_live: 0 }, /time_to_live must be a whole number/],
    ["a time to live past a day", { command: "ls", time_to_live: 86_401 }, /time_to_live must be a whole number/],
    ["an env name that is not one", { command: "ls", env: { "1BAD": "x" } }, /Invalid env name/],
    ["an env over 32 kB", { command: "ls", env: { BIG: "x".repeat(33 * 1024) } }, /at most 32 kB/],
    ["another type", { command: "ls", type: "worker" }, /of type run/],
    ["an attach that is not a boolean", { command: "bash", attach: "yes" }, /attach/],
  ])("refuses %s with {id, message} and starts nothing", async (_label, body, message) => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      await deploySlug(owner.token, app.name);
      const res = await api(`/apps/${app.name}/dynos`, { method: "POST", token: owner.token, body });
      expect(res.status, res.text).toBe(422);
      expect(res.body).toMatchObject({ id: "invalid_params", message: expect.stringMatching(message) });
      expect(await runDynos(app.id)).toEqual([]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("answers an attached run with a rendezvous URL whose token only that dyno's host takes, for a minute", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      await deploySlug(owner.token, app.name);
      const cases = [
        { body: { attach: true, command: "bash", env: { TERM: "xterm", COLUMNS: 120, LINES: 40 } }, attach: "tty" },
        { body: { attach: true, command: "bash", env: { TERM: "xterm", COLUMNS: 120, LINES: 40 }, force_no_tty: true }, attach: "pipes" },
        { body: { attach: true, command: "cat" }, attach: "pipes" }, // the client has no terminal: it sends no size
      ];
      for (const { body, attach } of cases) {
        const res = await api(`/apps/${app.name}/dynos`, { method: "POST", token: owner.token, body });
        expect(res.status, res.text).toBe(201);
        expect(herokuSchema().validateResponse("POST", `/apps/${app.name}/dynos`, res.body)).toEqual([]);
        const url = new URL(res.body.attach_url as string);
        expect(url.protocol).toBe("rendezvous:");
        expect(url.port).toMatch(/^\d+$/); // the CLI cannot connect without one
        const [row] = (await runDynos(app.id)).filter((d) => d.name === res.body.name);
        expect(row).toMatchObject({ attach });
        const [host] = await (await db()).select().from(hosts).where(eq(hosts.id, row!.hostId!));
        expect(`${url.hostname}:${url.port}`).toBe(host!.rendezvous);
        const claims = decodeJwt(url.pathname.slice(1));
        expect(claims).toMatchObject({ iss: "dynoplane", purpose: "rendezvous", sub: row!.id, aud: host!.id });
        expect(claims.exp! - claims.iat!).toBe(60);
      }
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it("refuses an app with nothing deployed, and other accounts' apps", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    try {
      const empty = await api(`/apps/${app.name}/dynos`, { method: "POST", token: owner.token, body: { command: "ls" } });
      expect(empty.status).toBe(422);
      expect(empty.body.message).toMatch(/no release to run yet/);
      await deploySlug(owner.token, app.name);
      const theirs = await api(`/apps/${app.name}/dynos`, { method: "POST", token: stranger.token, body: { command: "cat /app/*" } });
      expect([403, 404]).toContain(theirs.status);
      expect(await runDynos(app.id)).toEqual([]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});

describe("one-off dynos on the dashboard", () => {
  it("are listed on the Resources page while they run, and its stop button ends them (with the page's CSRF token only)", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    try {
      await deploySlug(owner.token, app.name);
      const run = await api(`/apps/${app.name}/dynos`, { method: "POST", token: owner.token, body: { command: "sleep 600", attach: false } });
      expect(run.status, run.text).toBe(201);
      const name = run.body.name as string;
      // A client address of its own, so sign-in counters do not mix with other tests'.
      const browser = new DashboardClient({ "CF-Connecting-IP": `203.0.113.${Math.floor(Math.random() * 250) + 1}` });
      expect((await browser.signIn(owner.email, owner.password)).status).toBe(303);
      const page = await browser.get(`/dashboard/apps/${app.name}/resources`);
      expect(page.status).toBe(200);
      expect(page.text).toContain("One-off dynos");
      expect(page.text).toContain(`Stop ${name}`);
      expect(page.text).toContain("sleep 600");

      const forged = await browser.post(`/dashboard/apps/${app.name}/dynos/${name}/stop`, {}, { csrf: null });
      expect(forged.status).toBe(403);
      expect((await runDynos(app.id))[0]).toMatchObject({ name, desired: "up" });

      const stopped = await browser.post(`/dashboard/apps/${app.name}/dynos/${name}/stop`, {});
      expect(stopped.status).toBe(303);
      expect(stopped.location).toBe(`/dashboard/apps/${app.name}/resources`);
      const rows = await runDynos(app.id);
      expect(rows.every((d) => d.desired === "stopped")).toBe(true);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});

describe("one-off dynos of a host agent that restarts", () => {
  /** Reports as a host agent would: the control plane's side of the protocol is what is under test. */
  const heartbeat = async (secret: string, session: string, reported: Array<{ id: string; instance: string }>) => {
    const res = await api("/internal/hosts/heartbeat", {
      method: "POST",
      headers: { Authorization: `Bearer ${secret}` },
      // No capacity: the platform places nothing else on this host.
      body: {
        url: "http://127.0.0.1:9",
        capacity_mb: 0,
        session,
        dynos: reported.map((d) => ({ ...d, state: "up", port: null, exit_code: null })),
        dropped_log_lines: 0,
      },
    });
    expect(res.status, res.text).toBe(200);
  };

  it("are forgotten at the new agent's first heartbeat, with a line in the app's log, never left as phantoms", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { host, secret } = await createHost(await db(), `restarting-${Date.now().toString(36)}`);
    try {
      const { release } = await deploySlug(owner.token, app.name);
      const [run] = await (await db())
        .insert(dynos)
        .values({ appId: app.id, releaseId: release.id, name: "run.4242", type: "run", command: "sleep 600", size: "Basic", hostId: host.id, state: "up" })
        .returning();
      const first = randomUUID();
      await heartbeat(secret, first, [run!]);
      // The same agent, not reporting it for a moment (a start still on its way): kept, for now.
      await heartbeat(secret, first, []);
      expect((await runDynos(app.id)).map((d) => d.name)).toEqual(["run.4242"]);
      // A new agent on the host: the old one's dynos died with it.
      await heartbeat(secret, randomUUID(), []);
      expect(await runDynos(app.id)).toEqual([]);
      const listed = await api(`/apps/${app.name}/dynos`, { token: owner.token });
      expect(listed.body.map((d: { name: string }) => d.name)).not.toContain("run.4242");
      const url = await logSessionUrl(owner.token, app.name, { dyno: "run.4242", lines: 10 });
      const log = await (await fetch(url, { dispatcher: tlsAgent() })).text();
      expect(log).toContain("heroku[run.4242]: State changed from up to crashed (its host agent restarted)");
    } finally {
      await destroyApp(owner.token, app.name);
      await (await db()).delete(hosts).where(eq(hosts.id, host.id));
    }
  });
});
