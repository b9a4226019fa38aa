import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents, dynos, hosts, releases } from "../../src/db/schema/index.ts";
import { desiredForHost } from "../../src/services/dynos/dynos.ts";
import { drainHost, endStaleMoves, listHosts, moveOffDrainingHosts, removeHost, undrainHost } from "../../src/services/fleet/fleet.ts";
import { createHost, recordObservedDynos } from "../../src/services/fleet/hosts.ts";
import { placeDynos } from "../../src/services/dynos/placement.ts";
import { api, platform } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { makeAccount, db as sharedDb } from "../support/factories.ts";
import { createOwnDatabase, type OwnDatabase, seedApp } from "../support/own-database.ts";

const run = promisify(execFile);

// Draining and removing hosts, on a database of its own so that only this test's hosts are
// there: a drained host takes no dynos, gives its dynos up one at a time, each running on
// until its new instance is up elsewhere; an empty host can be removed, a busy one not.
// And agents that speak another protocol are refused with a reason.

describe.skipIf(!platform().adminDatabaseUrl)("the fleet for its operator", () => {
  let own: OwnDatabase;

  beforeAll(async () => {
    own = await createOwnDatabase("fleet_ops");
  }, 60_000);
  afterAll(() => own?.drop());

  async function upHost(name: string, capacityMb = 4096) {
    const { host } = await own.handle.db.transaction(async (tx) => createHost(tx, name));
    await own.handle.db
      .update(hosts)
      .set({ state: "up", capacityMb, url: `http://127.0.0.1:9/${name}`, lastHeartbeatAt: sql`now()` })
      .where(eq(hosts.id, host.id));
    return host.id;
  }

  it("drains a host one dyno at a time, each running on there until it is up elsewhere, then removes it", async () => {
    const db = own.handle.db;
    const [a, b, c] = [await upHost("host-a"), await upHost("host-b"), await upHost("host-c")];
    const { account, app } = await seedApp(db, "drained");
    const [release] = await db
      .insert(releases)
      .values({ appId: app.id, version: 1, description: "Initial release", userEmail: account.email, slugId: crypto.randomUUID() })
      .returning();
    await db.transaction(async (tx) => {
      await tx
        .insert(dynos)
        .values(["web.1", "web.2"].map((name) => ({ appId: app.id, releaseId: release!.id, name, type: "web", command: "x", size: "Standard-1X" })));
      await placeDynos(tx);
    });
    const where = async () => Object.fromEntries((await db.select().from(dynos).where(eq(dynos.appId, app.id))).map((d) => [d.name, d]));
    const before = await where();
    // Spread: the two web dynos on two hosts.
    expect(before["web.1"]!.hostId).not.toBe(before["web.2"]!.hostId);
    const drained = [a, b, c].find((h) => h === before["web.1"]!.hostId)!;
    const other = before["web.2"]!.hostId!;
    const spare = [a, b, c].find((h) => h !== drained && h !== other)!;
    const drainedName = (await listHosts(db)).find((h) => h.id === drained)!.name;

    await drainHost(db, { actor: null, via: "cli" }, drainedName);
    expect((await listHosts(db)).find((h) => h.id === drained)!.state).toBe("draining");
    // A move is one dyno at a time: the first goes; a second check moves nothing while it is on its way.
    const moved = await db.transaction(async (tx) => {
      const n = await moveOffDrainingHosts(tx);
      await placeDynos(tx);
      return n;
    });
    expect(moved).toBe(1);
    expect(await db.transaction((tx) => moveOffDrainingHosts(tx))).toBe(0);
    const moving = (await where())["web.1"]!;
    // Placed apart from web.2, never back on the draining host.
    expect(moving.hostId).toBe(spare);
    expect(moving.previousHostId).toBe(drained);
    expect(moving.previousInstance).toBe(before["web.1"]!.instance);
    expect(moving.instance).not.toBe(before["web.1"]!.instance);
    // The draining host keeps running the old instance; the new host starts the new one.
    expect((await desiredForHost(db, drained, 60)).map((d) => [d.name, d.instance])).toEqual([["web.1", before["web.1"]!.instance]]);
    expect((await desiredForHost(db, spare, 60)).map((d) => [d.name, d.instance])).toEqual([["web.1", moving.instance]]);
    // The draining host's reports about its old instance change nothing.
    await recordObservedDynos(db, drained, [{ id: moving.id, instance: before["web.1"]!.instance, state: "up", port: 5000, exit_code: null }]);
    expect((await where())["web.1"]!.state).toBe("starting");
    // A busy host cannot be removed.
    await expect(removeHost(db, drainedName)).rejects.toThrow(/still holds 1 dyno: drain it first/);
    // Up on its new host: the move is over, and the draining host no longer runs it.
    await recordObservedDynos(db, spare, [{ id: moving.id, instance: moving.instance, state: "up", port: 5000, exit_code: null }]);
    const landed = (await where())["web.1"]!;
    expect([landed.state, landed.previousHostId, landed.previousInstance]).toEqual(["up", null, null]);
    expect(await desiredForHost(db, drained, 60)).toEqual([]);
    expect((await listHosts(db)).find((h) => h.id === drained)).toMatchObject({ state: "draining", dynos: 0, committedMb: 0 });

    // The operator's view, as `dynoplane hosts` prints it.
    const listed = await run(process.execPath, ["bin/dynoplane.js", "hosts"], { env: { ...process.env, DATABASE_URL: own.url } });
    const line = listed.stdout.split("\n").find((l) => l.startsWith(drainedName))!;
    expect(line).toMatch(/draining\s+http:\/\/127\.0\.0\.1:9\/host-\w\s+\d+s ago\s+4096 MB\s+0 MB \(0%\)\s+0\s+-/);
    expect(listed.stdout.split("\n")[0]).toMatch(/^NAME\s+STATE\s+ADDRESS\s+LAST HEARTBEAT\s+CAPACITY\s+COMMITTED\s+DYNOS\s+AGENT$/);
    const refused = await run(process.execPath, ["bin/dynoplane.js", "hosts:remove", (await listHosts(db)).find((h) => h.id === other)!.name], {
      env: { ...process.env, DATABASE_URL: own.url },
    }).catch((err: { code: number; stderr: string }) => err);
    expect(refused).toMatchObject({ code: 1 });
    expect((refused as { stderr: string }).stderr).toContain("drain it first");
    await removeHost(db, drainedName);
    expect((await listHosts(db)).map((h) => h.id)).not.toContain(drained);
  }, 60_000);

  it("takes a drained host back with undrain, and ends a move whose dyno was stopped", async () => {
    const db = own.handle.db;
    const lone = await upHost("host-lone", 1024);
    const { account, app } = await seedApp(db, "undrained");
    const [release] = await db
      .insert(releases)
      .values({ appId: app.id, version: 1, description: "Initial release", userEmail: account.email, slugId: crypto.randomUUID() })
      .returning();
    await drainHost(db, { actor: null, via: "cli" }, "host-lone");
    // Only the draining host has room for it: nothing is placed there.
    await db.update(hosts).set({ state: "down" }).where(sql`${hosts.id} <> ${lone}`);
    const placed = await db.transaction(async (tx) => {
      await tx.insert(dynos).values({ appId: app.id, releaseId: release!.id, name: "web.1", type: "web", command: "x", size: "Standard-1X" });
      return placeDynos(tx);
    });
    expect(placed.size).toBe(0);
    await undrainHost(db, { actor: null, via: "cli" }, "host-lone");
    expect([...(await db.transaction((tx) => placeDynos(tx)))]).toEqual([lone]);
    // A move in flight whose dyno is then stopped: the old instance is not kept.
    const [d] = await db.select().from(dynos).where(eq(dynos.appId, app.id));
    await db.update(dynos).set({ previousHostId: lone, previousInstance: d!.instance, desired: "stopped" }).where(eq(dynos.id, d!.id));
    await endStaleMoves(db);
    expect((await db.select().from(dynos).where(eq(dynos.id, d!.id)))[0]!.previousHostId).toBeNull();
  });
});

describe("agents that speak another protocol", () => {
  it("are refused with a reason, and their host does not come up", async () => {
    const { host, secret } = await createHost(await sharedDb(), `future-agent-${Date.now().toString(36)}`);
    const beat = (agent: unknown) =>
      api("/internal/hosts/heartbeat", {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}` },
        body: { agent, url: "http://127.0.0.1:9", capacity_mb: 1024, dynos: [], dropped_log_lines: 0 },
      });
    const refused = await beat({ version: "9.0.0", protocol: 2 });
    expect(refused.status).toBe(409);
    expect(refused.body).toEqual({
      id: "conflict",
      message:
        "This control plane speaks host protocol 1, and this agent (9.0.0) speaks protocol 2: run an agent release that speaks protocol 1, or upgrade the control plane first.",
    });
    const [row] = await (await sharedDb()).select().from(hosts).where(eq(hosts.id, host.id));
    expect([row!.state, row!.lastHeartbeatAt, row!.agentVersion]).toEqual(["down", null, null]);
  });
});

describe("the dashboard's fleet page", () => {
  it("shows operators every host and lets them drain one; to anyone else it does not exist", async () => {
    const conn = await sharedDb();
    const stamp = Date.now().toString(36);
    const { host } = await createHost(conn, `fleet-page-${stamp}`);
    const operator = await makeAccount();
    const user = await makeAccount();
    const made = await run(process.execPath, ["bin/dynoplane.js", "accounts:operator", operator.email], {
      env: { ...process.env, DATABASE_URL: platform().databaseUrl },
    });
    expect(made.stdout).toContain(`${operator.email} is an operator`);

    const outsider = new DashboardClient();
    expect((await outsider.signIn(user.email, user.password)).status).toBe(303);
    const hidden = await outsider.get("/dashboard/operator/hosts");
    expect(hidden.status).toBe(404);
    expect(hidden.text).not.toContain(host.name);
    // Nor can they drain one by posting the form (with their own valid CSRF token).
    await outsider.get("/dashboard/account");
    const posted = await outsider.post(`/dashboard/operator/hosts/${host.name}/drain`, {});
    expect(posted.status).toBe(404);
    expect((await conn.select().from(hosts).where(eq(hosts.id, host.id)))[0]!.drainingSince).toBeNull();

    const browser = new DashboardClient();
    expect((await browser.signIn(operator.email, operator.password)).status).toBe(303);
    expect((await browser.get("/dashboard/account")).text).toContain('href="/dashboard/operator/hosts"');
    const page = await browser.get("/dashboard/operator/hosts");
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-host="${host.name}"`);
    const drained = await browser.post(`/dashboard/operator/hosts/${host.name}/drain`, {});
    expect(drained.status).toBe(303);
    expect((await conn.select().from(hosts).where(eq(hosts.id, host.id)))[0]!.drainingSince).not.toBeNull();
    expect(await drainAudits(host.name)).toEqual([{ action: "host.draining", actorEmail: operator.email, details: { host: host.name, via: "dashboard" } }]);
    const after = await browser.get("/dashboard/operator/hosts");
    expect(after.text).toContain(`Draining ${host.name}`);
    expect(after.text).toContain(`Undrain ${host.name}`);
    await browser.post(`/dashboard/operator/hosts/${host.name}/undrain`, {});
    expect((await conn.select().from(hosts).where(eq(hosts.id, host.id)))[0]!.drainingSince).toBeNull();
    // Taken away again, the page is gone for them too.
    await run(process.execPath, ["bin/dynoplane.js", "accounts:operator", operator.email, "--undo"], {
      env: { ...process.env, DATABASE_URL: platform().databaseUrl },
    });
    expect((await browser.get("/dashboard/operator/hosts")).status).toBe(404);
  });

  it("dynoplane hosts:drain leaves the same audit row as the dashboard's, naming the CLI; a host that is not there leaves none", async () => {
    const conn = await sharedDb();
    const { host } = await createHost(conn, `fleet-cli-${Date.now().toString(36)}`);
    const env = { ...process.env, DATABASE_URL: platform().databaseUrl };
    await run(process.execPath, ["bin/dynoplane.js", "hosts:drain", host.name], { env });
    await run(process.execPath, ["bin/dynoplane.js", "hosts:undrain", host.name], { env });
    expect(await drainAudits(host.name)).toEqual([
      { action: "host.draining", actorEmail: null, details: { host: host.name, via: "cli" } },
      { action: "host.undrained", actorEmail: null, details: { host: host.name, via: "cli" } },
    ]);
    const missing = `${host.name}-gone`;
    await expect(run(process.execPath, ["bin/dynoplane.js", "hosts:drain", missing], { env })).rejects.toThrow(/no host named/);
    expect(await drainAudits(missing)).toEqual([]);
  });
});

/** The audit rows of draining and undraining a host, oldest first. */
async function drainAudits(name: string) {
  return (await sharedDb())
    .select({ action: auditEvents.action, actorEmail: auditEvents.actorEmail, details: auditEvents.details })
    .from(auditEvents)
    .where(sql`${auditEvents.action} like 'host.%' and ${auditEvents.details}->>'host' = ${name}`)
    .orderBy(auditEvents.id);
}
