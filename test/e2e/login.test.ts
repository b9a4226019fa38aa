import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { api, platform } from "../support/api.ts";
import { launchBrowser, screenshot, signInWithBrowser, type TestBrowser } from "../support/browser.ts";
import { closeDb, makeAccount } from "../support/factories.ts";
import { ensureHerokuCli, heroku, herokuPty, makeCliHome, readNetrc, type PtySession } from "../support/heroku-cli.ts";

// The unmodified heroku CLI 11.10.0 logging in the default way: it prints a URL (headless
// mode), a real Chromium follows it, the person signs in and answers, and the CLI gets a
// token, or is told no.

let chrome: TestBrowser;

beforeAll(async () => {
  await ensureHerokuCli();
  chrome = await launchBrowser();
}, 600_000);

afterAll(async () => {
  await chrome?.close();
  await closeDb();
});

/** Runs `heroku login`, presses a key at its prompt and returns the browser URL it prints. */
async function startCliLogin(home: string): Promise<{ session: PtySession; url: string }> {
  // HEROKU_TESTING_HEADLESS_LOGIN prints the URL; BROWSER keeps xdg-open from starting a browser of its own.
  const session = await herokuPty(["login"], { home, env: { HEROKU_TESTING_HEADLESS_LOGIN: "1", BROWSER: "true" } });
  await session.expect(/Press any key to open up the browser/);
  session.write("x");
  const [url] = await session.expect(/https:\/\/localhost:\d+\/dashboard\/cli-login\/[A-Za-z0-9_-]{43}/);
  expect(url).toContain(`https://localhost:${platform().port}/`);
  await session.expect(/Waiting for login/);
  return { session, url: url! };
}

describe("heroku login in the browser", { timeout: 120_000 }, () => {
  it("signs in, approves, and the CLI is logged in; logout revokes the token it used", async () => {
    const account = await makeAccount();
    const home = makeCliHome();
    const { session, url } = await startCliLogin(home);
    const context = await chrome.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      // Not signed in yet: the sign-in page, which offers sign-up too.
      await page.getByRole("heading", { name: "Sign in to dynoplane" }).waitFor();
      expect(await page.getByRole("link", { name: "Create an account" }).count()).toBe(1);
      await screenshot(page, "login-01-sign-in");
      await signInWithBrowser(page, account.email, account.password);
      await page.getByRole("heading", { name: `Log in to the CLI on ${os.hostname()}?` }).waitFor();
      await screenshot(page, "login-02-approve");
      await page.getByRole("button", { name: "Approve" }).click();
      await page.getByRole("heading", { name: "CLI login approved" }).waitFor();
      await screenshot(page, "login-03-approved");

      const done = await session.exited(60_000);
      expect(done.code, done.output).toBe(0);
      expect(done.output).toContain(`Logged in as ${account.email}`);
    } finally {
      session.kill();
      await context.close();
    }

    const token = readNetrc(home)[`localhost:${platform().port}`]?.password;
    expect(token).toMatch(/^dpl_/);
    expect(token).not.toBe(account.token);
    const whoami = await heroku(["auth:whoami"], { home });
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(whoami.stdout.trim()).toBe(account.email);

    const logout = await heroku(["logout"], { home });
    expect(logout.code, logout.stderr).toBe(0);
    expect((await api("/account", { token })).status).toBe(401);
    // Only the CLI's own token ended; the account's other token still works.
    expect((await api("/account", { token: account.token })).status).toBe(200);
  });

  it("reports a denial in the browser and writes no credentials", async () => {
    const account = await makeAccount();
    const home = makeCliHome();
    const { session, url } = await startCliLogin(home);
    const context = await chrome.newContext();
    try {
      const page = await context.newPage();
      await page.goto(url);
      await signInWithBrowser(page, account.email, account.password);
      await page.getByRole("button", { name: "Deny" }).click();
      await page.getByRole("heading", { name: "CLI login denied" }).waitFor();
      await screenshot(page, "login-04-denied");

      const done = await session.exited(60_000);
      expect(done.code).not.toBe(0);
      expect(done.output).toContain("The login was denied in the browser.");
      expect(done.output).not.toContain("Logged in as");
    } finally {
      session.kill();
      await context.close();
    }
    expect(readNetrc(home)).toEqual({});
    const whoami = await heroku(["auth:whoami"], { home });
    expect(whoami.code).not.toBe(0);
  });
});
