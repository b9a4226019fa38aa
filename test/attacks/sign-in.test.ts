import { readFileSync } from "node:fs";
import { eq } from "drizzle-orm";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { oauthAuthorizations } from "../../src/db/schema/index.ts";
import { api, platform } from "../support/api.ts";
import { closeDb, db, makeAccount } from "../support/factories.ts";
import { callApi, type SecondWorker, startSecondWorker } from "../support/second-worker.ts";

// Attacks on sign-in: guessing a password, rotating forged client-address headers to escape
// the limit, and guessing from one client to lock everyone else out. Defence: the limits of
// src/services/access/sign-in-throttle.ts, per (account, client address) and per address, the
// address taken from the proxy's header or, without one, from the listening socket.

afterAll(closeDb);

const CLI_LOGIN_BODY = { description: "Heroku CLI login from host", expires_in: 2592000, scope: ["global"] };
const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString("base64")}`;
const rowsOf = async (accountId: string) => (await db()).select().from(oauthAuthorizations).where(eq(oauthAuthorizations.accountId, accountId));

describe("password guessing behind a proxy that names the client (as Cloudflare's front does)", () => {
  let n = 0;
  /** An address of its own for each test (the test platform believes CF-Connecting-IP). */
  const address = () => `198.51.100.${(process.pid + n++) % 250}-${Date.now().toString(36)}`;
  const loginFrom = (from: string, email: string, password: string) =>
    api("/oauth/authorizations", { method: "POST", body: CLI_LOGIN_BODY, headers: { Authorization: basic(email, password), "CF-Connecting-IP": from } });

  it("refuses even the right password from an address that guessed 10 times; its owner elsewhere still signs in", async () => {
    const account = await makeAccount();
    const before = await rowsOf(account.id);
    const guesser = address();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await loginFrom(guesser, account.email, `wrong-${i}`)).status);
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(20).fill(429)]);
    const blocked = await loginFrom(guesser, account.email, account.password);
    expect(blocked.status).toBe(429);
    expect(blocked.body).toEqual({ id: "rate_limit", message: "Too many failed sign-ins. Try again in 15 minutes." });
    expect(await rowsOf(account.id)).toEqual(before);
    const owner = await loginFrom(address(), account.email, account.password);
    expect(owner.status).toBe(201);
  });
});

/** A client on its own loopback address (127.0.0.0/8 is all this machine's), as two people's machines would be. */
function clientAt(localAddress: string): Agent {
  return new Agent({
    localAddress,
    connect: {
      ca: readFileSync(platform().caPath),
      // Node asks for one address when the socket has a local address of its own.
      lookup: (_host, opts, cb) =>
        opts.all ? cb(null, [{ address: "127.0.0.1", family: 4 }]) : (cb as (e: null, a: string, f: number) => void)(null, "127.0.0.1", 4),
    },
  });
}

describe("sign-in guessing on the single-machine platform (no client-address header believed)", () => {
  let worker: SecondWorker;
  beforeAll(async () => {
    // As `npm start` runs the Worker: CLIENT_ADDRESS_HEADER is empty.
    worker = await startSecondWorker({ CLIENT_ADDRESS_HEADER: "" });
  }, 120_000);
  afterAll(() => worker?.stop());

  const login = (client: Agent | undefined, email: string, password: string, forged = "203.0.113.7") =>
    callApi(
      worker.url,
      "/oauth/authorizations",
      {
        method: "POST",
        body: CLI_LOGIN_BODY,
        headers: { Authorization: basic(email, password), "CF-Connecting-IP": forged, "X-Forwarded-For": forged, "X-Real-IP": forged },
      },
      client,
    );

  it("does not let rotated CF-Connecting-IP or X-Forwarded-For headers escape the limit", async () => {
    const account = await makeAccount();
    for (let i = 0; i < 10; i++) expect((await login(undefined, account.email, `wrong-${i}`, `203.0.113.${i}`)).status).toBe(401);
    expect((await login(undefined, account.email, account.password, "203.0.113.99")).status).toBe(429);
  });

  it("lets ten failures by anyone lock out no one else's correct password", async () => {
    const account = await makeAccount();
    for (let i = 0; i < 10; i++) expect((await login(undefined, `anyone-${i}-${Date.now()}@example.com`, "guess", `203.0.113.${i}`)).status).toBe(401);
    expect((await login(undefined, account.email, account.password, "203.0.113.200")).status).toBe(201);
  });

  it("cannot jam another client: ninety guesses on random emails and ten on one account leave its owner signing in at once", async () => {
    const victim = await makeAccount();
    const guesser = clientAt("127.0.0.2");
    const owner = clientAt("127.0.0.3");
    try {
      for (let i = 0; i < 90; i++) expect((await login(guesser, `nobody-${i}-${Date.now()}@example.com`, "guess")).status).toBe(401);
      for (let i = 0; i < 10; i++) expect((await login(guesser, victim.email, `wrong-${i}`)).status).toBe(401);
      // Defence: the limits key on the address the listening socket saw (request.cf.clientIp), never one shared bucket.
      const mine = await login(owner, victim.email, victim.password);
      expect(mine.status, mine.text).toBe(201);
      // The guesser stays limited, forged headers or not, right password or not.
      const guessed = await login(guesser, victim.email, victim.password, "198.51.100.1");
      expect(guessed.status).toBe(429);
      expect(guessed.body).toEqual({ id: "rate_limit", message: "Too many failed sign-ins. Try again in 15 minutes." });
      const elsewhere = await makeAccount();
      expect((await login(guesser, elsewhere.email, elsewhere.password)).status).toBe(429);
    } finally {
      await guesser.close();
      await owner.close();
    }
  });
});
