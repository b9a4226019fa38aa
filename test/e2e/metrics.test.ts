import { fetch } from "undici";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RELATIVE_ERROR } from "../../src/metrics/histogram.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { launchBrowser, screenshot, signInWithBrowser, type TestBrowser } from "../support/browser.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { wholeLog } from "../support/log-app.ts";
import { heroku, makeCliHome, stripAnsi } from "../support/heroku-cli.ts";
import { appUrl, deploySlug, destroyApp, waitFor, waitForUp } from "../support/slugs.ts";

// An app's metrics end to end: known traffic through the router becomes exact counts and
// percentiles within the histogram's error; the agent's samples become a memory series per
// dyno; deploys and crashes become markers; `heroku labs:enable log-runtime-metrics` puts
// Heroku's sample lines in `heroku logs`; another account reads none of it.

let owner: TestAccount;
let other: TestAccount;
let app: { id: string; name: string };
let chrome: TestBrowser | undefined;
let context: BrowserContext | undefined;

/** Known traffic: [status, delay ms, how many]. */
const TRAFFIC: Array<[number, number, number]> = [
  [200, 0, 60],
  [404, 0, 20],
  [500, 300, 15],
  [200, 1_000, 5],
];
const SENT = TRAFFIC.reduce((n, [, , k]) => n + k, 0);

/** Each request's time as the client saw it, ms: the router's own measure of it is no longer. */
const seenMs: number[] = [];

async function send(status: number, ms: number): Promise<number> {
  const started = performance.now();
  const res = await fetch(appUrl(app.name, `/status?code=${status}&ms=${ms}`), { dispatcher: tlsAgent() });
  await res.arrayBuffer();
  seenMs.push(performance.now() - started);
  return res.status;
}

async function metrics(token: string, query = "range=1h") {
  return api(`/apps/${app.name}/metrics?${query}`, { token });
}

beforeAll(async () => {
  owner = await makeAccount();
  other = await makeAccount();
  app = await makeApp(owner);
  await deploySlug(owner.token, app.name);
  const scaled = await api(`/apps/${app.name}/formation`, {
    method: "PATCH",
    token: owner.token,
    body: { updates: [{ type: "web", quantity: 2, size: "Standard-1X" }] },
  });
  expect(scaled.status, scaled.text).toBe(200);
  await waitForUp(owner.token, app.name, ["web.1", "web.2"]);
}, 180_000);

afterAll(async () => {
  await context?.close();
  await chrome?.close();
  if (owner) await destroyApp(owner.token, app.name);
  await closeDb();
});

describe("app metrics", { timeout: 180_000 }, () => {
  it("counts routed requests exactly by status, with percentiles within the histogram's error", async () => {
    // Every request in flight at once, per group, so the delays overlap.
    for (const [status, ms, count] of TRAFFIC) {
      const answered = await Promise.all(Array.from({ length: count }, () => send(status, ms)));
      expect(answered).toEqual(Array(count).fill(status));
    }
    const reading = await waitFor(
      "the router's batch in the app's metrics",
      async () => {
        const res = await metrics(owner.token);
        expect(res.status, res.text).toBe(200);
        return res.body.totals.web?.requests === SENT ? res.body : null;
      },
      30_000,
      500,
    );
    const totals = reading.totals.web;
    expect(totals.status).toEqual({ "2xx": 65, "3xx": 0, "4xx": 20, "5xx": 15 });
    expect(totals.errors).toEqual({});
    // Sorted: 80 fast answers, then 15 after 300 ms, then 5 after 1 s. p50 is a fast one,
    // p95 the last of the 300 ms group, p99 in the 1 s group: each at least its delay, less
    // the histogram's error, and at most what the client saw at that rank (the router times
    // a part of each request the client times), plus the error. No bound on this machine's speed.
    // By nearest rank, as the histogram reads them.
    const clientAt = (p: number) => [...seenMs].sort((a, b) => a - b)[Math.ceil((p / 100) * SENT) - 1]!;
    const within = (got: number, p: number, delay: number) => {
      expect(got, `p${p}`).toBeGreaterThanOrEqual(delay * (1 - RELATIVE_ERROR));
      expect(got, `p${p}`).toBeLessThanOrEqual(clientAt(p) * (1 + RELATIVE_ERROR) + 1);
    };
    within(totals.p50_ms, 50, 0);
    within(totals.p95_ms, 95, 300);
    within(totals.p99_ms, 99, 1_000);
    expect(totals.p50_ms).toBeLessThan(totals.p95_ms);
    expect(totals.max_ms).toBeGreaterThanOrEqual(1_000);
    // The minutes add up to the totals, and the coarser resolutions hold the same counts.
    const perMinute = reading.requests.web.reduce((n: number, p: { requests: number }) => n + p.requests, 0);
    expect(perMinute).toBe(SENT);
    for (const range of ["24h", "7d", "30d"]) {
      const wider = await metrics(owner.token, `range=${range}`);
      expect(wider.body.totals.web.requests).toBe(SENT);
      expect(wider.body.totals.web.status).toEqual(totals.status);
    }
    // The deploy is a marker on the same axis.
    expect(reading.events.map((e: { kind: string }) => e.kind)).toContain("deploy");
  });

  it("keeps a memory series for each dyno from the agent's samples", async () => {
    const reading = await waitFor(
      "samples of both web dynos",
      async () => {
        const res = await metrics(owner.token);
        const dynos = res.body.dynos;
        const sampled = (name: string) => dynos[name]?.points.some((p: { memory_rss_mb: number | null }) => (p.memory_rss_mb ?? 0) > 0);
        return sampled("web.1") && sampled("web.2") ? res.body : null;
      },
      60_000,
      1_000,
    );
    for (const name of ["web.1", "web.2"]) {
      const point = reading.dynos[name].points.find((p: { memory_rss_mb: number | null }) => p.memory_rss_mb !== null);
      expect(reading.dynos[name].type).toBe("web");
      // A Node server: tens of MB, under its Standard-1X quota.
      expect(point.memory_rss_mb).toBeGreaterThan(5);
      expect(point.memory_rss_mb).toBeLessThan(512);
      expect(point.memory_quota_mb).toBe(512);
    }
  });

  it("shows a crash as a marker on the same axis", async () => {
    const crashed = await fetch(appUrl(app.name, "/crash"), { dispatcher: tlsAgent() });
    expect(crashed.status).toBe(200);
    await crashed.arrayBuffer();
    const reading = await waitFor(
      "the crash on the app's events",
      async () => {
        const res = await metrics(owner.token);
        return res.body.events.some((e: { kind: string }) => e.kind === "crash") ? res.body : null;
      },
      30_000,
      500,
    );
    const crash = reading.events.find((e: { kind: string }) => e.kind === "crash");
    expect(crash.dyno).toMatch(/^web\.[12]$/);
    expect(crash.message).toContain("exit status 3");
  });

  it("writes Heroku's runtime metric lines once log-runtime-metrics is enabled", async () => {
    const home = makeCliHome();
    const cli = (args: string[]) => heroku([...args, "--app", app.name], { home, env: { HEROKU_API_KEY: owner.token }, timeoutMs: 60_000 });
    const enabled = await cli(["labs:enable", "log-runtime-metrics"]);
    expect(enabled.code, enabled.stderr).toBe(0);
    expect(stripAnsi(enabled.stderr)).toContain("Enabling log-runtime-metrics");
    const labs = await cli(["labs"]);
    expect(labs.code, labs.stderr).toBe(0);
    expect(stripAnsi(labs.stdout)).toMatch(/\[\+\]\s+log-runtime-metrics/);
    // Waited for through the API; then the CLI shows them.
    await waitFor(
      "sample lines in the app's log",
      async () => {
        const text = (await wholeLog(owner.token, app.name)).join("\n");
        return text.includes("sample#memory_rss=") && text.includes("sample#load_avg_1m=");
      },
      60_000,
      1_000,
    );
    const lines = stripAnsi((await cli(["logs", "-n", "500"])).stdout);
    const memory = lines.split("\n").find((l) => l.includes("sample#memory_rss="))!;
    expect(memory).toMatch(
      /heroku\[web\.[12]\]: source=web\.[12] dyno=heroku\.[0-9a-f-]+\.[0-9a-f-]+ sample#memory_total=[\d.]+MB sample#memory_rss=[\d.]+MB sample#memory_cache=[\d.]+MB sample#memory_swap=[\d.]+MB sample#memory_pgpgin=\d+pages sample#memory_pgpgout=\d+pages sample#memory_quota=512\.00MB/,
    );
    expect(lines).toMatch(/source=web\.[12] dyno=\S+ sample#load_avg_1m=[\d.]+ sample#load_avg_5m=[\d.]+ sample#load_avg_15m=[\d.]+/);
    const disabled = await cli(["labs:disable", "log-runtime-metrics"]);
    expect(disabled.code, disabled.stderr).toBe(0);
  });

  it("shows another account none of it, and refuses a bad range with a clear error", async () => {
    const foreign = await metrics(other.token);
    expect(foreign.status).toBe(403);
    expect(foreign.body.id).toBe("forbidden");
    expect(foreign.text).not.toContain("web.1");
    const anonymous = await api(`/apps/${app.name}/metrics`);
    expect(anonymous.status).toBe(401);
    const bad = await metrics(owner.token, "range=5y");
    expect(bad.status).toBe(422);
    expect(bad.body.id).toBe("invalid_params");
    expect(bad.body.message).toContain("range");
    const extra = await metrics(owner.token, "range=1h&url=http://169.254.169.254/");
    expect(extra.status).toBe(422);
  });

  it("draws the Metrics tab: counts, a memory line per dyno, deploy and crash markers, and a table view", async () => {
    chrome = await launchBrowser();
    context = await chrome.newContext();
    const page: Page = await context.newPage();
    await page.goto(`${platform().apiUrl}/dashboard/apps/${app.name}/metrics?range=1h`);
    await signInWithBrowser(page, owner.email, owner.password);
    await page.goto(`${platform().apiUrl}/dashboard/apps/${app.name}/metrics?range=1h`);
    await page.getByRole("heading", { name: "Metrics" }).waitFor();
    const api1h = (await metrics(owner.token)).body;
    expect(await page.locator('[data-metric="requests"]').innerText()).toBe(String(api1h.totals.web.requests));
    expect(await page.locator('[data-metric="5xx"]').innerText()).toBe(String(api1h.totals.web.status["5xx"]));
    // The throughput bars add up to the requests.
    const bars = await page
      .locator("#chart-throughput rect[data-value]")
      .evaluateAll((rects) => rects.reduce((n, r) => n + Number(r.getAttribute("data-value")), 0));
    expect(bars).toBe(api1h.totals.web.requests);
    // A line (or, with samples in one minute only, a dot) per dyno, and the quota's line.
    for (const name of ["web.1", "web.2"])
      expect(await page.locator(`#chart-memory g.series[data-series="${name} RSS"] :is(path, circle)`).count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-memory g.series[data-series^="quota"] path').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-response-time g.marker[data-kind="deploy"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-response-time g.marker[data-kind="crash"]').count()).toBeGreaterThan(0);
    // The table view holds the same numbers as the charts.
    await page.getByText("Table view of the charts").click();
    const tableTotal = await page.locator("#requests-table tbody tr").evaluateAll((rows) => rows.reduce((n, r) => n + Number(r.children[1]!.textContent), 0));
    expect(tableTotal).toBe(api1h.totals.web.requests);
    expect(await page.locator('#memory-table tbody tr[data-dyno="web.1"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#memory-table tbody tr[data-dyno="web.2"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#events-table tr[data-kind="crash"]').count()).toBeGreaterThan(0);
    await screenshot(page, "metrics-tab");
    // Another account's session gets the dashboard's refusal, not the charts.
    const intruder = await chrome.newContext();
    const theirs = await intruder.newPage();
    await theirs.goto(`${platform().apiUrl}/dashboard/apps/${app.name}/metrics`);
    await signInWithBrowser(theirs, other.email, other.password);
    const refused = await theirs.goto(`${platform().apiUrl}/dashboard/apps/${app.name}/metrics`);
    expect(refused?.status()).toBe(403);
    expect(await theirs.locator("#chart-memory").count()).toBe(0);
    await intruder.close();
  });
});
