import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/auth/signing.ts";
import { api, platform } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { herokuSchema } from "../support/heroku-schema.ts";
import { lineText, logSessionUrl, readSse } from "../support/log-app.ts";

afterAll(closeDb);

const setConfig = (owner: TestAccount, app: string, vars: Record<string, string | null>) =>
  api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: vars });

/** Reads the app's log (no tail) until `done` holds for its texts. */
async function waitForLog(owner: TestAccount, app: string, done: (texts: string[]) => boolean, body: Record<string, unknown> = {}) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const reader = await readSse(await logSessionUrl(owner.token, app, { lines: 1500, ...body }));
    await reader.ended;
    const texts = reader.events.map((e) => lineText(e.data));
    if (done(texts)) return { reader, texts };
    if (Date.now() > deadline) throw new Error(`the log never matched; it holds:\n${texts.join("\n")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("POST /apps/{app}/log-sessions", () => {
  it("answers Heroku's log-session with a self-authenticating URL on the API host", async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    const res = await api(`/apps/${name}/log-sessions`, { method: "POST", token: owner.token, body: { lines: 5, tail: false, source: "app", dyno: "web.1" } });
    expect(res.status).toBe(201);
    expect(herokuSchema().validateResponse("POST", `/apps/${name}/log-sessions`, res.body)).toEqual([]);
    const url = new URL(res.body.logplex_url);
    expect(url.origin).toBe(platform().apiUrl);
    expect(url.pathname).toBe(`/log-sessions/${res.body.id}`);
    expect(url.searchParams.get("token")).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it.each<[string, unknown]>([
    ["lines above 1,500", { lines: 1501 }],
    ["negative lines", { lines: -1 }],
    ["lines as a string", { lines: "10" }],
    ["tail as a string", { tail: "yes" }],
    ["a dyno with a space", { dyno: "web 1" }],
    ["an unknown source", { source: "router" }],
    ["an unknown field", { follow: true }],
    ["both dyno and type", { dyno: "web.1", type: "web" }],
  ])("refuses %s with 422", async (_label, body) => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    const res = await api(`/apps/${name}/log-sessions`, { method: "POST", token: owner.token, body });
    expect(res.status).toBe(422);
    expect(res.body.id).toBe("invalid_params");
  });

  it("needs a token, and the app's owner", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const { name } = await makeApp(owner);
    expect((await api(`/apps/${name}/log-sessions`, { method: "POST", body: {} })).status).toBe(401);
    expect((await api(`/apps/${name}/log-sessions`, { method: "POST", token: stranger.token, body: {} })).status).toBe(403);
    expect((await api(`/apps/no-such-app-here/log-sessions`, { method: "POST", token: owner.token, body: {} })).status).toBe(404);
  });
});

describe("GET <logplex_url>", () => {
  it("streams the history as SSE with line ids, and records platform events in Heroku's words", async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    expect((await setConfig(owner, name, { FOO: "1" })).status).toBe(200);
    expect((await setConfig(owner, name, { FOO: null })).status).toBe(200);
    const { reader, texts } = await waitForLog(owner, name, (t) => t.includes(`Release v3 created by user ${owner.email}`));
    expect(reader.status).toBe(200);
    expect(reader.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(texts).toEqual([
      `Initial release by user ${owner.email}`,
      `Release v1 created by user ${owner.email}`,
      `Set FOO config vars by user ${owner.email}`,
      `Release v2 created by user ${owner.email}`,
      `Remove FOO config vars by user ${owner.email}`,
      `Release v3 created by user ${owner.email}`,
    ]);
    expect(reader.events[0]!.data).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 app\[api\]: Initial release by user /);
    const ids = reader.events.map((e) => Number(e.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
  });

  it("gives the last N lines and applies dyno and source filters", async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    for (let i = 1; i <= 3; i++) await setConfig(owner, name, { [`K${i}`]: "x" });
    await waitForLog(owner, name, (t) => t.includes(`Release v4 created by user ${owner.email}`));
    const last = await readSse(await logSessionUrl(owner.token, name, { lines: 2 }));
    await last.ended;
    expect(last.events.map((e) => lineText(e.data))).toEqual([`Set K3 config vars by user ${owner.email}`, `Release v4 created by user ${owner.email}`]);
    for (const filter of [{ dyno: "api" }, { source: "app" }, { dyno_name: "api" }]) {
      const r = await readSse(await logSessionUrl(owner.token, name, { lines: 100, ...filter }));
      await r.ended;
      expect(r.events).toHaveLength(8);
    }
    for (const filter of [{ dyno: "web" }, { dyno: "web.1" }, { source: "heroku" }, { type: "router" }]) {
      const r = await readSse(await logSessionUrl(owner.token, name, { lines: 100, ...filter }));
      await r.ended;
      expect(r.events).toEqual([]);
    }
  });

  it("tails: live lines follow the history, and a reconnect with Last-Event-ID neither repeats nor skips", async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    const url = await logSessionUrl(owner.token, name, { lines: 100, tail: true });
    const first = await readSse(url);
    expect(first.status).toBe(200);
    await first.waitFor((e) => e.data.includes("Release v1 created"));
    await setConfig(owner, name, { A: "1" });
    const seen = await first.waitFor((e) => e.data.includes("Release v2 created"));
    first.abort();
    // While no one listens, more happens.
    await setConfig(owner, name, { B: "1" });
    await setConfig(owner, name, { C: "1" });
    await waitForLog(owner, name, (t) => t.some((x) => x.startsWith("Release v4 created")));
    const second = await readSse(url, seen.id!);
    await second.waitFor((e) => e.data.includes("Release v4 created"));
    second.abort();
    const texts = [...first.events, ...second.events].map((e) => lineText(e.data));
    expect(texts.filter((t) => t.startsWith("Release v"))).toEqual([1, 2, 3, 4].map((v) => `Release v${v} created by user ${owner.email}`));
    expect(new Set([...first.events, ...second.events].map((e) => e.id)).size).toBe(texts.length);
  });

  it("keeps an idle tail open with comments", { timeout: 40_000 }, async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    const tail = await readSse(await logSessionUrl(owner.token, name, { lines: 0, tail: true }));
    const deadline = Date.now() + 25_000;
    while (!tail.comments.includes("keep-alive") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    tail.abort();
    expect(tail.comments).toContain("keep-alive");
    expect(tail.events).toEqual([]);
  });

  it("forgets tails whose clients went away, within two keep-alives (an app has at most 50 at once)", { timeout: 90_000 }, async () => {
    const owner = await makeAccount();
    const { name } = await makeApp(owner);
    const url = await logSessionUrl(owner.token, name, { lines: 1, tail: true });
    const openAll = async () => {
      const open = [];
      for (let i = 0; i < 50; i++) open.push(await readSse(url));
      return open;
    };
    const first = await openAll();
    expect(first.map((t) => t.status)).toEqual(Array(50).fill(200));
    const refused = await readSse(url);
    expect(refused.status).toBe(429);
    refused.abort();
    for (const t of first) t.abort();
    // Nothing reads from an idle client, so a hang-up shows when writing to it fails: at
    // the second keep-alive after it (a first write still lands in the socket's buffer).
    const deadline = Date.now() + 45_000;
    let again = await readSse(url);
    while (again.status !== 200 && Date.now() < deadline) {
      again.abort();
      await new Promise((r) => setTimeout(r, 500));
      again = await readSse(url);
    }
    again.abort();
    expect(again.status).toBe(200);
    const second = await openAll();
    for (const t of second) t.abort();
    expect(second.filter((t) => t.status === 200).length).toBeGreaterThanOrEqual(49);
  });

  it("ends a tail when its session expires; the reconnect that follows is refused", async () => {
    const owner = await makeAccount();
    const { id: appId } = await makeApp(owner);
    const key = readFileSync(path.join(platform().home, "signing-key.jwk"), "utf8");
    const id = crypto.randomUUID();
    const token = await signToken(key, {
      purpose: "log-session",
      audience: id,
      subject: appId,
      ttlSeconds: 3,
      extra: { account: owner.id, tail: true, lines: 10 },
    });
    const url = `${platform().apiUrl}/log-sessions/${id}?token=${token}`;
    const started = Date.now();
    const tail = await readSse(url);
    expect(tail.status).toBe(200);
    await tail.waitFor((e) => e.data.includes("Release v1 created"));
    await tail.ended;
    expect(Date.now() - started).toBeLessThan(10_000);
    const again = await readSse(url, tail.events.at(-1)!.id!);
    expect(again.status).toBe(403);
    again.abort();
  });

  it("refuses a forged, misdirected or expired token with 403, which ends a CLI tail", async () => {
    const owner = await makeAccount();
    const { id: appId, name } = await makeApp(owner);
    const url = new URL(await logSessionUrl(owner.token, name, { tail: true }));
    const token = url.searchParams.get("token")!;
    const other = new URL(await logSessionUrl(owner.token, name, { tail: true }));
    const key = readFileSync(path.join(platform().home, "signing-key.jwk"), "utf8");
    const expired = await signToken(key, {
      purpose: "log-session",
      audience: url.pathname.split("/").pop()!,
      subject: appId,
      ttlSeconds: 1,
      extra: { account: owner.id, tail: true, lines: 1 },
    });
    const cases = [
      `${url.origin}${url.pathname}?token=${token.slice(0, -4)}AAAA`,
      `${url.origin}${url.pathname}?token=${other.searchParams.get("token")}`,
      `${url.origin}${url.pathname}`,
    ];
    await new Promise((r) => setTimeout(r, 2100));
    cases.push(`${url.origin}${url.pathname}?token=${expired}`);
    for (const bad of cases) {
      const r = await readSse(bad);
      expect(r.status, bad).toBe(403);
      r.abort();
    }
  });
});
