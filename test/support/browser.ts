import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page, type Response } from "playwright-core";
import { platform } from "./api.ts";

/** Debian's Chromium (apt `chromium`); playwright cannot download browsers here. */
export const CHROMIUM = "/usr/bin/chromium";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Where page screenshots go (gitignored), for looking at the pages. */
export const SCREENSHOTS = path.join(repoRoot, "test-output", "screenshots");

/** A running Chromium for one test file. */
export interface TestBrowser {
  browser: Browser;
  /** A fresh context (cookies of its own): one person at one browser. */
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

/**
 * Starts headless Chromium that trusts the platform's local CA the way a person's
 * Chromium would: through an NSS database in its HOME (certutil), with certificate
 * checks left on.
 */
export async function launchBrowser(): Promise<TestBrowser> {
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-chromium-"));
  const nssdb = path.join(home, ".pki", "nssdb");
  mkdirSync(nssdb, { recursive: true });
  execFileSync("certutil", ["-N", "-d", `sql:${nssdb}`, "--empty-password"]);
  execFileSync("certutil", ["-A", "-d", `sql:${nssdb}`, "-n", "dynoplane-local-ca", "-t", "C,,", "-i", platform().caPath]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), XDG_CACHE_HOME: path.join(home, ".cache") },
  });
  return {
    browser,
    newContext: () => browser.newContext({ viewport: { width: 1280, height: 900 } }),
    async close() {
      await browser.close().catch(() => {});
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * `page.goto`, again when Chromium gave up because the machine's network changed: Linux
 * Chromium abandons a navigation in flight when any interface's address changes, and the
 * platform's sandboxes add and remove interfaces all the time (a person's browser would
 * load the page again too). Any other failure is the test's.
 */
export async function visitPage(page: Page, url: string): Promise<Response | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.goto(url);
    } catch (err) {
      // Chromium says so itself, or shows its error page in the navigation's place.
      const message = String((err as Error).message);
      if (attempt >= 3 || !(message.includes("net::ERR_NETWORK_CHANGED") || message.includes('navigation to "chrome-error://chromewebdata/"'))) throw err;
    }
  }
}

/** Saves a full-page screenshot as test-output/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Fills the sign-in form and submits it. */
export async function signInWithBrowser(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}
