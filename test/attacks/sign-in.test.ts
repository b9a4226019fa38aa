import { readFileSync } from "node:fs";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { platform } from "../support/api.ts";
import { closeDb, makeAccount } from "../support/factories.ts";
import { callApi, type SecondWorker, startSecondWorker } from "../support/second-worker.ts";

afterAll(closeDb);

const CLI_LOGIN_BODY = { description: "Heroku CLI login", scope: ["global"] };
const basic = (email: string, password: string) => `Basic ${Buffer.from(`${email}:${password}`).toString("base64")}`;

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

  const login = (client: Agent, email: string, password: string, forged = "203.0.113.7") =>
    callApi(
      worker.url,
      "/oauth/authorizations",
      { method: "POST", body: CLI_LOGIN_BODY, headers: { Authorization: basic(email, password), "CF-Connecting-IP": forged, "X-Forwarded-For": forged } },
      client,
    );

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
