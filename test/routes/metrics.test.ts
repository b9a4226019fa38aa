import { afterAll, describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { dynos, dynoUsage, formations, releases } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { api } from "../support/api.ts";
import { DashboardClient } from "../support/dashboard-client.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";

afterAll(closeDb);

// The metrics endpoint and the Metrics tab without traffic of their own: the query's
// checks, the owner's eco hours beside an eco app's charts, and who may look.

describe("GET /apps/{app}/metrics", () => {
  it("refuses what it does not know with invalid_params, and answers every range it names", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    for (const query of ["range=1y", "range=1h&process_type=Web!", "range=1h&since=2020-01-01", "range=1h&range=24h"]) {
      const res = await api(`/apps/${app.name}/metrics?${query}`, { token: owner.token });
      expect(res.status, query).toBe(422);
      expect(res.body.id, query).toBe("invalid_params");
    }
    const expected = { "1h": [60, 60], "24h": [600, 144], "7d": [3600, 168], "30d": [3600, 720] } as const;
    for (const [range, [resolution, buckets]] of Object.entries(expected)) {
      const res = await api(`/apps/${app.name}/metrics?range=${range}`, { token: owner.token });
      expect(res.status, res.text).toBe(200);
      expect(res.body).toMatchObject({
        app: { id: app.id, name: app.name },
        range,
        resolution_s: resolution,
        process_types: [],
        requests: {},
        dynos: {},
        eco: null,
      });
      const span = Date.parse(res.body.to) - Date.parse(res.body.from);
      // From the start of the bucket the range begins in.
      expect(Math.ceil(span / (resolution * 1000))).toBeGreaterThanOrEqual(buckets);
      expect(Math.ceil(span / (resolution * 1000))).toBeLessThanOrEqual(buckets + 1);
    }
    // The default range is 24 hours.
    expect((await api(`/apps/${app.name}/metrics`, { token: owner.token })).body.range).toBe("24h");
  });

  it("shows an eco app's owner pool and projections, as JSON and on the Metrics tab", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const conn = await db();
    await conn.insert(formations).values({ appId: app.id, type: "web", quantity: 1, size: "Eco", command: "node server.js" });
    // Three hours of an eco dyno this month.
    const ended = new Date(Math.max(Date.now() - 60_000, Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1) + 3 * 3_600_000 + 60_000));
    const started = new Date(ended.getTime() - 3 * 3_600_000);
    await conn
      .insert(dynoUsage)
      .values({ accountId: owner.id, appId: app.id, dynoId: crypto.randomUUID(), dynoName: "web.1", size: "Eco", startedAt: started, endedAt: ended });
    const res = await api(`/apps/${app.name}/metrics?range=1h`, { token: owner.token });
    expect(res.status, res.text).toBe(200);
    expect(res.body.eco).toMatchObject({ month: new Date().toISOString().slice(0, 7), pool_hours: 550, used_hours: 3, exhausted_until: null });
    expect(res.body.eco.projected_hours.without_keep_alive).toBeGreaterThanOrEqual(3);

    const browser = new DashboardClient();
    expect((await browser.signIn(owner.email, owner.password)).status).toBe(303);
    const page = await browser.get(`/dashboard/apps/${app.name}/metrics?range=1h`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="chart-eco"');
    expect(page.text).toContain("pool 550 h");
    expect(page.text).toContain("3 h");
    expect(page.text).toContain("No requests or dyno samples in this range yet.");
    // A range the tab does not know is the dashboard's refusal, not a page of charts.
    const bad = await browser.get(`/dashboard/apps/${app.name}/metrics?range=forever`);
    expect(bad.status).toBe(422);
    expect(bad.text).not.toContain('id="metrics-live"');
  });

  it("lets a collaborator read an app's metrics, and no one else", async () => {
    const owner = await makeAccount();
    const helper = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    expect((await api(`/apps/${app.name}/collaborators`, { method: "POST", token: owner.token, body: { user: helper.email } })).status).toBe(201);
    expect((await api(`/apps/${app.name}/metrics?range=1h`, { token: helper.token })).status).toBe(200);
    const refused = await api(`/apps/${app.id}/metrics?range=1h`, { token: stranger.token });
    expect(refused.status).toBe(403);
    expect(refused.body.id).toBe("forbidden");
    const outsider = new DashboardClient();
    expect((await outsider.signIn(stranger.email, stranger.password)).status).toBe(303);
    const page = await outsider.get(`/dashboard/apps/${app.name}/metrics`);
    expect(page.status).toBe(403);
    expect(page.text).not.toContain("chart-");
  });

  it("takes a host's dyno samples only for dynos placed on that host", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const conn = await db();
    const stamp = Date.now().toString(36);
    const mine = await createHost(conn, `metrics-mine-${stamp}`);
    const theirs = await createHost(conn, `metrics-theirs-${stamp}`);
    const [release] = await conn.select().from(releases).where(eq(releases.appId, app.id));
    // Stopped rows: nothing places or runs them; only the report is under test.
    const [dyno] = await conn
      .insert(dynos)
      .values({
        appId: app.id,
        releaseId: release!.id,
        name: "web.1",
        type: "web",
        command: "x",
        size: "Standard-1X",
        hostId: mine.host.id,
        desired: "stopped",
        state: "down",
      })
      .returning();
    const report = (rssMb: number) => ({
      dynos: [
        {
          id: dyno!.id,
          usage: {
            memory_rss_mb: rssMb,
            memory_cache_mb: 0,
            memory_swap_mb: 0,
            memory_total_mb: rssMb,
            memory_pgpgin: 1,
            memory_pgpgout: 1,
            load_avg_1m: 0.5,
            load_avg_5m: 0.2,
            load_avg_15m: 0.1,
          },
          memory_quota_mb: 512,
          restarts: 0,
          errors: ["R14"],
        },
      ],
    });
    const post = (secret: string, body: unknown) => api("/internal/hosts/metrics", { method: "POST", headers: { Authorization: `Bearer ${secret}` }, body });
    // Another host's report about this dyno, a malformed one, and one without credentials change nothing.
    expect((await post(theirs.secret, report(999))).status).toBe(204);
    const malformed = await post(mine.secret, { dynos: [{ id: dyno!.id, usage: { memory_rss_mb: -1 } }] });
    expect(malformed.status).toBe(422);
    expect(malformed.body.id).toBe("invalid_params");
    expect((await api("/internal/hosts/metrics", { method: "POST", body: report(999) })).status).toBe(401);
    const untouched = await api(`/apps/${app.name}/metrics?range=1h`, { token: owner.token });
    expect(untouched.body.dynos).toEqual({});
    expect(untouched.body.events).toEqual([expect.objectContaining({ kind: "release" })]);
    // Its own host's report lands, with the R14 as an event.
    expect((await post(mine.secret, report(123))).status).toBe(204);
    const landed = await api(`/apps/${app.name}/metrics?range=1h`, { token: owner.token });
    const point = landed.body.dynos["web.1"].points.find((p: { memory_rss_mb: number | null }) => p.memory_rss_mb !== null);
    expect(point).toMatchObject({ memory_rss_mb: 123, memory_quota_mb: 512, load_avg_1m: 0.5 });
    expect(landed.body.events.map((e: { kind: string; code?: string }) => [e.kind, e.code ?? null])).toContainEqual(["error", "R14"]);
  });
});
