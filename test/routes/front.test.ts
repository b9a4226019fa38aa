import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ownAgents, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";

// What stands in front of the Worker answers nothing of its own: every answer a client can
// get is the Worker's, JSON `{id, message}` for the API, whatever the body did before it.

const newAgent = ownAgents();
afterAll(closeDb);

const V3 = { Accept: "application/vnd.heroku+json; version=3", "Content-Type": "application/json" };

/** `megabytes` of JSON-looking bytes, chunked (no length to refuse it by). */
const chunked = (megabytes: number) =>
  new ReadableStream<Uint8Array>({
    start(ctl) {
      ctl.enqueue(new TextEncoder().encode('{"pad":"'));
      for (let i = 0; i < megabytes * 16; i++) ctl.enqueue(new Uint8Array(64 * 1024).fill(0x61));
      ctl.enqueue(new TextEncoder().encode('"}'));
      ctl.close();
    },
  });

let owner: TestAccount;
let app: { name: string };
beforeAll(async () => {
  owner = await makeAccount();
  app = await makeApp(owner, appName("front"));
});

describe("the platform's front", () => {
  it.each([
    ["a stranger", 12],
    ["the owner", 12],
    ["a stranger", 48],
  ] as const)(
    "answers %s's chunked body of %i MB with payload_too_large, and the next requests as usual",
    async (who, megabytes) => {
      const mine = newAgent();
      const others = newAgent();
      const auth = { ...V3, Authorization: `Bearer ${owner.token}` };
      {
        const answer = await fetch(`${platform().apiUrl}/apps/${app.name}/config-vars`, {
          method: "PATCH",
          headers: who === "the owner" ? auth : V3,
          body: chunked(megabytes),
          duplex: "half",
          dispatcher: mine,
        }).then(
          async (res) => ({ status: res.status, body: (await res.json()) as { id: string; message: string } }),
          // Past what the Worker reads off (16 MB) it answers and closes: a client still
          // sending may see the connection reset before it reads the answer.
          (err: Error & { cause?: { code?: string } }) => ({ status: 0, body: { id: String(err.cause?.code), message: err.message } }),
        );
        if (megabytes > 16 && answer.status === 0) expect(answer.body.id).toMatch(/ECONNRESET|EPIPE|UND_ERR_SOCKET/);
        else {
          // The size is checked before the credentials: a stranger learns no more than the owner.
          expect([answer.status, answer.body.id], who).toEqual([413, "payload_too_large"]);
          expect(answer.body.message, who).toMatch(/^Request bodies may be at most \d+ kB\.$/);
        }
        // Nothing changed, and the next requests of anyone are answered.
        for (const dispatcher of [mine, others]) {
          const next = await fetch(`${platform().apiUrl}/apps/${app.name}/config-vars`, { headers: auth, dispatcher });
          expect(next.status, who).toBe(200);
          expect(await next.json()).not.toHaveProperty("pad");
        }
      }
    },
    60_000,
  );

  it("answers 60 POSTs whose bodies are never read, each with the API's own error", async () => {
    const dispatcher = newAgent();
    const post = (i: number) =>
      fetch(`${platform().apiUrl}/apps/${app.name}/${i % 2 ? "builds" : "no-such-collection"}`, {
        method: "POST",
        // Half are strangers (refused before the body), half the owner posting where nothing is.
        headers: i % 2 ? V3 : { ...V3, Authorization: `Bearer ${owner.token}` },
        body: JSON.stringify({ source_blob: { url: "https://example.invalid/x.tgz", pad: "a".repeat(8 * 1024) } }),
        dispatcher,
      }).then(async (res) => [res.status, ((await res.json()) as { id: string }).id] as const);
    const answers: Array<readonly [number, string]> = [];
    for (let i = 0; i < 60; i += 10) answers.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => post(i + j)))));
    expect(answers).toHaveLength(60);
    expect(answers.filter(([status]) => status === 401).every(([, id]) => id === "unauthorized")).toBe(true);
    expect(answers.filter(([status]) => status === 404).every(([, id]) => id === "not_found")).toBe(true);
    expect(answers.filter(([status]) => status === 401)).toHaveLength(30);
    expect(answers.filter(([status]) => status === 404)).toHaveLength(30);
  }, 60_000);
});
