import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform } from "../support/api.ts";
import { launchBrowser, screenshot, type TestBrowser } from "../support/browser.ts";
import { appName, closeDb, makeAccount } from "../support/factories.ts";
import { deploySlug, destroyApp, visit, waitFor } from "../support/slugs.ts";

// A person in a real Chromium: signs up, creates an app, deploys it (through the Slug API
// with the key the account page shows once), scales it and watches its dynos come up, sets
// and removes a config var, watches a log line arrive live, rolls back, and deletes the
// app by typing its name.

let chrome: TestBrowser;
let context: BrowserContext;
let page: Page;
const email = `dash-${Date.now().toString(36)}@example.com`;
const password = "correct horse battery";
const app = appName("dash");
let token = "";
let randomApp = "";

const base = () => platform().apiUrl;
const flash = () => page.locator(".flash").first().innerText();
const tab = (name: string) => page.getByRole("navigation", { name: "App sections" }).getByRole("link", { name, exact: true }).click();

beforeAll(async () => {
  chrome = await launchBrowser();
  context = await chrome.newContext();
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  if (token) for (const name of [app, randomApp]) if (name) await destroyApp(token, name);
  await context?.close();
  await chrome?.close();
  await closeDb();
});

describe("the dashboard in a browser", { timeout: 240_000 }, () => {
  it("signs up and creates apps, named and random", async () => {
    await page.goto(`${base()}/`);
    await page.getByRole("heading", { name: "Sign in to dynoplane" }).waitFor();
    await screenshot(page, "dashboard-01-sign-in");
    await page.getByRole("link", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(password);
    await screenshot(page, "dashboard-02-sign-up");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Apps", exact: true }).waitFor();
    expect(await page.getByText("You have no apps yet").count()).toBe(1);

    await page.getByLabel("App name").fill(app);
    await page.getByRole("button", { name: "Create app" }).click();
    await page.getByRole("heading", { name: app, exact: true }).waitFor();
    expect(await flash()).toBe(`Created ${app}.`);
    expect(await page.getByText(`https://${app}.apps.localhost:${platform().port}/`).count()).toBeGreaterThan(0);
    await screenshot(page, "dashboard-03-app-overview");

    await page.goto(`${base()}/dashboard/apps`);
    await page.getByRole("button", { name: "Create app" }).click();
    randomApp = (await page.locator("main h1").innerText()).trim();
    expect(randomApp).toMatch(/^[a-z][a-z0-9-]{1,28}[a-z0-9]$/);
    await page.goto(`${base()}/dashboard/apps`);
    expect(await page.locator(".app-list > li").count()).toBe(2);
    await screenshot(page, "dashboard-04-apps");
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, "dashboard-05-apps-narrow");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("shows a new API key once, which then deploys a slug", async () => {
    await page.getByRole("link", { name: "Account" }).click();
    await page.getByRole("button", { name: "Generate API key" }).click();
    token = (await page.locator("#new-api-key").innerText()).trim();
    expect(token).toMatch(/^dpl_/);
    await screenshot(page, "dashboard-06-account-key");
    expect((await api("/account", { token })).body.email).toBe(email);
    // Reloading would send the form again; coming back to the page shows only the redacted key.
    await page.goto(`${base()}/dashboard/account`);
    expect(await page.content()).not.toContain(token);
    expect(await page.getByText(`${token.slice(0, 8)}**********${token.slice(-4)}`).count()).toBe(1);
    await deploySlug(token, app, { web: `node server.js ${app}`, worker: "node worker.js" });
  });

  it("scales web to 2 and shows both dynos up", async () => {
    await page.goto(`${base()}/dashboard/apps/${app}`);
    await tab("Resources");
    // Eco runs one dyno per process type, as on Heroku: the page says so and nothing changes.
    await page.locator("#scale-web-quantity").fill("2");
    await page.getByRole("button", { name: "Save web" }).click();
    expect(await flash()).toBe("Cannot update to more than 1 Eco size dynos per process type.");
    expect((await api(`/apps/${app}/formation/web`, { token })).body.quantity).toBe(1);
    await page.locator("#scale-web-quantity").fill("2");
    await page.locator("#scale-web-size").selectOption("Standard-1X");
    await page.getByRole("button", { name: "Save web" }).click();
    expect(await flash()).toBe("Scaled to web@2:Standard-1X.");
    await waitFor(
      "web.1 and web.2 up on the Resources page",
      async () => {
        await page.reload();
        const rows = await page.locator("table").filter({ hasText: "web.1" }).innerText();
        return /web\.1\s+up/.test(rows) && /web\.2\s+up/.test(rows);
      },
      120_000,
      1000,
    );
    expect((await api(`/apps/${app}/formation/web`, { token })).body.quantity).toBe(2);
    await screenshot(page, "dashboard-07-resources");
  });

  it("sets, reveals and removes a config var", async () => {
    await tab("Settings");
    await page.locator("#config-key").fill("GREETING");
    await page.locator("#config-value").fill("hello from the dashboard");
    await page.getByRole("button", { name: "Add", exact: true }).click();
    expect(await flash()).toMatch(/^Set GREETING\. Released v3\.$/);
    expect((await api(`/apps/${app}/config-vars`, { token })).body).toEqual({ GREETING: "hello from the dashboard" });
    await page.goto(`${base()}/dashboard/apps/${app}/settings`);
    expect(await page.content()).not.toContain("hello from the dashboard");
    await page.getByRole("link", { name: "Reveal config vars" }).click();
    expect(await page.getByLabel("Value of GREETING").inputValue()).toBe("hello from the dashboard");
    await screenshot(page, "dashboard-08-settings");
    await page.getByRole("button", { name: "Remove GREETING" }).click();
    expect(await flash()).toMatch(/^Removed GREETING\. Released v4\.$/);
    expect((await api(`/apps/${app}/config-vars`, { token })).body).toEqual({});
  });

  it("streams a log line live", async () => {
    await tab("Logs");
    await page.locator("#live-status", { hasText: "Live:" }).waitFor({ timeout: 30_000 });
    const marker = `/live-${Date.now().toString(36)}`;
    expect(await page.locator("#log").innerText()).not.toContain(marker);
    expect((await visit(app, marker)).status).toBe(200);
    await page.locator("#log", { hasText: `request GET ${marker}` }).waitFor({ timeout: 30_000 });
    await screenshot(page, "dashboard-09-logs");
    // Filtering by source keeps the platform's lines out.
    await page.getByLabel("Source").selectOption("app");
    await page.getByRole("button", { name: "Apply filters" }).click();
    await page.locator("#live-status", { hasText: "Live:" }).waitFor({ timeout: 30_000 });
    await page.locator("#log", { hasText: marker }).waitFor();
    expect(await page.locator("#log").innerText()).not.toMatch(/ heroku\[router\]:/);
  });

  it("rolls back from the activity tab", async () => {
    await tab("Activity");
    await screenshot(page, "dashboard-10-activity");
    await page.getByRole("button", { name: "Roll back to v3" }).click();
    expect(await flash()).toBe("Rollback to v3: released v5.");
    expect((await api(`/apps/${app}/config-vars`, { token })).body).toEqual({ GREETING: "hello from the dashboard" });
  });

  it("adds a collaborator on the Access tab, who then reaches the app, and removes them", async () => {
    const helper = await makeAccount();
    await tab("Access");
    const nobody = `nobody-${Date.now().toString(36)}@example.com`;
    await page.locator("#collaborator-email").fill(nobody);
    await page.getByRole("button", { name: "Add collaborator" }).click();
    expect(await flash()).toBe(`Couldn't find a user with the email ${nobody}.`);
    await page.locator("#collaborator-email").fill(helper.email);
    await page.getByRole("button", { name: "Add collaborator" }).click();
    expect(await flash()).toBe(`Added ${helper.email}.`);
    expect(await page.getByRole("cell", { name: helper.email, exact: true }).count()).toBe(1);
    expect((await api(`/apps/${app}`, { token: helper.token })).status).toBe(200);
    await screenshot(page, "dashboard-12-access");
    await page.getByRole("button", { name: `Remove ${helper.email}` }).click();
    expect(await flash()).toBe(`Removed ${helper.email}.`);
    expect((await api(`/apps/${app}`, { token: helper.token })).status).toBe(403);
  });

  it("deletes the app only when its name is typed again", async () => {
    await tab("Settings");
    await page.locator("#confirm-name").fill(`${app}-typo`);
    await page.getByRole("button", { name: "Delete app" }).click();
    expect(await flash()).toBe(`The name you typed does not match ${app}; nothing was deleted.`);
    expect((await api(`/apps/${app}`, { token })).status).toBe(200);
    await screenshot(page, "dashboard-11-delete-refused");
    await page.locator("#confirm-name").fill(app);
    const answered = page.waitForResponse((r) => r.request().method() === "POST" && r.url().endsWith(`/apps/${app}/delete`), { timeout: 60_000 });
    await page.getByRole("button", { name: "Delete app" }).click();
    // The form's answer is a redirect to the app list; anything else is shown with its page.
    const response = await answered;
    expect(response.status(), await response.text().catch(() => "")).toBe(303);
    await page.getByRole("heading", { name: "Apps", exact: true }).waitFor({ timeout: 60_000 });
    expect(await flash()).toBe(`Deleted ${app}.`);
    expect((await api(`/apps/${app}`, { token })).status).toBe(404);
  });
});
