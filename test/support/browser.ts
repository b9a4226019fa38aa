import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
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
  let network: BrowserNetwork | null = null;
  try {
    network = await ownNetwork(home, platform().port);
    const nssdb = path.join(home, ".pki", "nssdb");
    mkdirSync(nssdb, { recursive: true });
    execFileSync("certutil", ["-N", "-d", `sql:${nssdb}`, "--empty-password"]);
    execFileSync("certutil", ["-A", "-d", `sql:${nssdb}`, "-n", "dynoplane-local-ca", "-t", "C,,", "-i", platform().caPath]);
    const browser = await chromium.launch({
      executablePath: network.chromium,
      headless: true,
      chromiumSandbox: false,
      args: ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), XDG_CACHE_HOME: path.join(home, ".cache") },
    });
    const own = network;
    return {
      browser,
      newContext: () => browser.newContext({ viewport: { width: 1280, height: 900 } }),
      async close() {
        await browser.close().catch(() => {});
        await own.close();
        rmSync(home, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await network?.close();
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
}

/** Chromium's own network: a command that starts it there, and how to take it down. */
interface BrowserNetwork {
  chromium: string;
  close(): Promise<void>;
}

/**
 * Runs inside the browser's network namespace: brings its loopback up, then answers the
 * platform's port there by passing each connection on to the unix socket the test listens on.
 */
const NAMESPACE_SIDE = `
const { execFileSync } = require("node:child_process");
const net = require("node:net");
const [port, socket] = process.argv.slice(1);
execFileSync("ip", ["link", "set", "lo", "up"]);
const pass = (conn) => {
  const out = net.connect(socket);
  conn.pipe(out).pipe(conn);
  conn.on("error", () => out.destroy());
  out.on("error", () => conn.destroy());
};
let waiting = 2;
const listening = () => { if (--waiting === 0) process.stdout.write("ready\\n"); };
net.createServer(pass).listen(Number(port), "127.0.0.1", listening);
net.createServer(pass).listen(Number(port), "::1", listening).on("error", listening);
process.stdin.on("end", () => process.exit(0)).resume();
`;

/**
 * A network namespace for Chromium alone, whose only interface is a loopback where the
 * platform's port answers (passed through a unix socket to the machine's loopback). Linux
 * Chromium abandons every navigation and form post in flight when any interface's address
 * changes, and the platform adds and removes interfaces all the time (a bridge per agent, a
 * veth pair per sandbox); a person's browser is on another machine and sees none of that.
 */
async function ownNetwork(home: string, port: number): Promise<BrowserNetwork> {
  const socket = path.join(home, `platform-${port}.sock`);
  const relay = net.createServer((conn) => {
    const out = net.connect(port, "127.0.0.1");
    conn.pipe(out).pipe(conn);
    conn.on("error", () => out.destroy());
    out.on("error", () => conn.destroy());
  });
  await new Promise<void>((resolve, reject) => relay.once("error", reject).listen(socket, resolve));
  // stdin stays open for the namespace's life: when this process ends, so does its side.
  const side: ChildProcess = spawn("unshare", ["--net", "--", process.execPath, "-e", NAMESPACE_SIDE, String(port), socket], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      side.once("error", reject);
      side.once("exit", (code) => reject(new Error(`the browser's network namespace ended at once (exit ${code})`)));
      side.stdout!.once("data", () => resolve());
    });
  } catch (err) {
    side.kill();
    relay.close();
    throw err;
  }
  const chromium = path.join(home, "chromium-in-namespace");
  writeFileSync(chromium, `#!/bin/sh\nexec nsenter --net=/proc/${side.pid}/ns/net -- ${CHROMIUM} "$@"\n`);
  chmodSync(chromium, 0o755);
  return {
    chromium,
    async close() {
      side.stdin!.end();
      side.kill();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
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
