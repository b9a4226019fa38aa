import { afterAll, describe, expect, it } from "vitest";
import { dynoUsage, formations } from "../../src/db/schema/index.ts";
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
});
