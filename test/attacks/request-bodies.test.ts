import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { ownAgents, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount } from "../support/factories.ts";

// Attack: a body left unread after an early answer, smuggled into the next request on the
// connection. Defence: the Worker reads off or cancels every refused body (src/lib/drain.ts,
// src/middleware/body.ts).

// An answer given before the body was read (bad signature, no credentials, too large) must
// not leave the rest of that body to the next request on the connection or in the runtime.

const newAgent = ownAgents();
afterAll(closeDb);

/** 2 MB in 16 kB chunks, sent with `Transfer-Encoding: chunked` (no length to refuse it by). */
const chunkedBody = () =>
  new ReadableStream<Uint8Array>({
    start(ctl) {
      for (let i = 0; i < 128; i++) ctl.enqueue(new Uint8Array(16 * 1024).fill(0x61));
      ctl.close();
    },
  });

describe("a request whose body is never read", () => {
  it.each([
    ["PUT", "/blobs/slugs/00000000-0000-4000-8000-000000000000?token=forged", {}],
    ["POST", "/apps/no-such-app.git/git-receive-pack", { "Content-Type": "application/x-git-receive-pack-request" }],
    ["POST", "/dashboard/login", { "Content-Type": "application/x-www-form-urlencoded" }],
    ["POST", "/apps", { "Content-Type": "application/json", Accept: "application/vnd.heroku+json; version=3" }],
  ])(
    "%s %s fails alone: the next requests, on its connection and on others, are answered",
    async (method, path, headers) => {
      const mine = newAgent();
      const others = newAgent();
      for (let round = 0; round < 4; round++) {
        const refused = await fetch(platform().apiUrl + path, { method, headers, body: chunkedBody(), duplex: "half", dispatcher: mine })
          .then(async (res) => ({ status: res.status, text: await res.text() }))
          // Answering early and closing on the rest of the upload is allowed; the client may see the reset.
          .catch((err: Error & { cause?: { code?: string } }) => ({ status: 0, text: String(err.cause?.code ?? err.message) }));
        if (refused.status) expect([401, 403, 404, 413], refused.text).toContain(refused.status);
        else expect(refused.text).toMatch(/ECONNRESET|EPIPE|UND_ERR_SOCKET/);
        for (const dispatcher of [mine, others]) {
          const next = await fetch(`${platform().apiUrl}/health`, { dispatcher });
          expect(next.status, `round ${round}`).toBe(200);
          expect(await next.json()).toEqual({ status: "ok" });
        }
      }
    },
    60_000,
  );
});

describe("a small chunked body", () => {
  it("is read whole under the API's limit: a chunked JSON body creates an app", async () => {
    const owner = await makeAccount();
    const json = new TextEncoder().encode(JSON.stringify({ name: appName("chunked") }));
    const body = new ReadableStream<Uint8Array>({
      start(ctl) {
        // Split mid-token, as a proxy may.
        ctl.enqueue(json.subarray(0, 5));
        ctl.enqueue(json.subarray(5));
        ctl.close();
      },
    });
    const res = await fetch(`${platform().apiUrl}/apps`, {
      method: "POST",
      headers: { Authorization: `Bearer ${owner.token}`, Accept: "application/vnd.heroku+json; version=3", "Content-Type": "application/json" },
      body,
      duplex: "half",
      dispatcher: newAgent(),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(((await res.json()) as { name: string }).name).toMatch(/^chunked-/);
  });
});
