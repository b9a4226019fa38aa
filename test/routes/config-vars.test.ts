import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";

afterAll(closeDb);

const LIMIT = 32 * 1024;

const patch = (account: TestAccount, app: string, body: unknown) => api(`/apps/${app}/config-vars`, { method: "PATCH", token: account.token, body });

const config = async (account: TestAccount, app: string) => (await api(`/apps/${app}/config-vars`, { token: account.token })).body;

/** The full release history, oldest first. */
async function releases(account: TestAccount, app: string) {
  const res = await api(`/apps/${app}/releases`, { token: account.token });
  expect(res.status).toBe(200);
  return res.body as { id: string; version: number; description: string; current: boolean }[];
}

const summary = (list: { version: number; description: string }[]) => list.map((r) => [r.version, r.description]);

/** An owner with an app that has a little config already. */
async function fixture() {
  const owner = await makeAccount();
  const app = await makeApp(owner);
  expect((await patch(owner, app.name, { EXISTING: "kept" })).status).toBe(200);
  return { owner, app: app.name };
}

describe("GET /apps/{app}/config-vars", () => {
  it("is an empty object for a new app", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const res = await api(`/apps/${app.name}/config-vars`, { token: owner.token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({});
  });

  it("is refused for another account's app", async () => {
    const { owner, app } = await fixture();
    const stranger = await makeAccount();
    const res = await api(`/apps/${app}/config-vars`, { token: stranger.token });
    expect(res.status).toBe(403);
    expect(res.body.id).toBe("forbidden");
    expect(res.text).not.toContain("kept");
    expect(await config(owner, app)).toEqual({ EXISTING: "kept" });
  });
});

describe("PATCH /apps/{app}/config-vars", () => {
  it("sets vars, answers the whole config and cuts one release", async () => {
    const { owner, app } = await fixture();
    const before = await releases(owner, app);
    const res = await patch(owner, app, { FOO: "bar" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ EXISTING: "kept", FOO: "bar" });
    expect(await config(owner, app)).toEqual({ EXISTING: "kept", FOO: "bar" });
    const after = await releases(owner, app);
    expect(summary(after)).toEqual([...summary(before), [before.at(-1)!.version + 1, "Set FOO config vars"]]);
    expect(after.at(-1)!.current).toBe(true);
  });

  it("removes a var with null", async () => {
    const { owner, app } = await fixture();
    await patch(owner, app, { FOO: "bar" });
    const before = await releases(owner, app);
    const res = await patch(owner, app, { FOO: null });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ EXISTING: "kept" });
    expect(await config(owner, app)).toEqual({ EXISTING: "kept" });
    expect(summary(await releases(owner, app))).toEqual([...summary(before), [before.at(-1)!.version + 1, "Remove FOO config vars"]]);
  });

  it("cuts one release per change, in order, with Heroku's descriptions", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    await patch(owner, app, { FOO: "1" });
    await patch(owner, app, { FOO: "2", BAR: "x" });
    await patch(owner, app, { FOO: null });
    await patch(owner, app, { BAZ: "y", BAR: null });
    await patch(owner, app, { A: null, BAZ: null, BAR: null, Q: "1" }); // A and BAR are already gone
    expect(summary(await releases(owner, app))).toEqual([
      [1, "Initial release"],
      [2, "Set FOO config vars"],
      [3, "Set FOO, BAR config vars"],
      [4, "Remove FOO config vars"],
      [5, "Set BAZ config vars and Remove BAR config vars"],
      [6, "Set Q config vars and Remove BAZ config vars"],
    ]);
    expect(await config(owner, app)).toEqual({ Q: "1" });
  });

  it.each([
    ["an empty patch", {}],
    ["the same value again", { EXISTING: "kept" }],
    ["removing a var that is not set", { MISSING: null }],
  ])("cuts no release for %s", async (_label, body) => {
    const { owner, app } = await fixture();
    const before = await releases(owner, app);
    const res = await patch(owner, app, body);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ EXISTING: "kept" });
    expect(await releases(owner, app)).toEqual(before);
  });

  it.each([
    ["a leading digit", { "1ABC": "x" }],
    ["a dash", { "A-B": "x" }],
    ["an empty name", { "": "x" }],
    ["a space", { "with space": "x" }],
    ["unicode", { CAFÉ: "x" }],
    ["an equals sign", { "A=B": "x" }],
    ["a bad name next to a good one", { GOOD: "x", "BAD-NAME": "y" }],
    ["a bad name being removed", { "A-B": null }],
    ["a number", { FOO: 42 }],
    ["an object", { FOO: { nested: "x" } }],
    ["an array", { FOO: ["x"] }],
    ["a boolean", { FOO: true }],
    ["a good value next to a number", { GOOD: "x", FOO: 1 }],
    ["an array body", ["FOO=bar"]],
    ["a string body", "FOO=bar"],
    ["a null body", null],
    ["a NUL character in a value", { FOO: "a\u0000b" }],
  ])("refuses %s and changes nothing", async (_label, body) => {
    const { owner, app } = await fixture();
    const before = await releases(owner, app);
    const res = await patch(owner, app, body);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body).toEqual({ id: expect.any(String), message: expect.any(String) });
    expect(await config(owner, app)).toEqual({ EXISTING: "kept" });
    expect(await releases(owner, app)).toEqual(before);
  });

  it("allows exactly 32 kB of config and refuses one byte more", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    // Keys count too: "BIG" + value = LIMIT bytes exactly.
    const ok = await patch(owner, app, { BIG: "x".repeat(LIMIT - 3) });
    expect(ok.status).toBe(200);
    const before = await releases(owner, app);
    const over = await patch(owner, app, { Z: "" });
    expect(over.status).toBe(422);
    expect(over.body).toEqual({ id: "invalid_params", message: expect.any(String) });
    expect(Object.keys(await config(owner, app))).toEqual(["BIG"]);
    expect(await releases(owner, app)).toEqual(before);
  });

  it("counts the size in UTF-8 bytes and across existing vars", async () => {
    const { owner, app } = await fixture();
    const before = await releases(owner, app);
    // 20 k characters, but 40 kB: "é" is two bytes in UTF-8.
    const res = await patch(owner, app, { WIDE: "é".repeat(20 * 1024) });
    expect(res.status).toBe(422);
    const half = await patch(owner, app, { HALF: "x".repeat(20 * 1024) });
    expect(half.status).toBe(200);
    const after = await releases(owner, app);
    const more = await patch(owner, app, { OTHER: "x".repeat(20 * 1024) });
    expect(more.status).toBe(422);
    expect(Object.keys(await config(owner, app)).sort()).toEqual(["EXISTING", "HALF"]);
    expect(after).toHaveLength(before.length + 1);
    expect(await releases(owner, app)).toEqual(after);
  });

  it("answers 400 for malformed JSON and a non-JSON body and changes nothing", async () => {
    const { owner, app } = await fixture();
    const before = await releases(owner, app);
    const bad = await api(`/apps/${app}/config-vars`, {
      method: "PATCH",
      token: owner.token,
      rawBody: '{"FOO": "bar"',
      headers: { "Content-Type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ id: "bad_request", message: expect.any(String) });
    const text = await api(`/apps/${app}/config-vars`, {
      method: "PATCH",
      token: owner.token,
      rawBody: "FOO=bar",
      headers: { "Content-Type": "text/plain" },
    });
    expect(text.status).toBe(400);
    expect(await config(owner, app)).toEqual({ EXISTING: "kept" });
    expect(await releases(owner, app)).toEqual(before);
  });

  it("refuses another account's app and changes nothing", async () => {
    const { owner, app } = await fixture();
    const stranger = await makeAccount();
    const before = await releases(owner, app);
    const res = await patch(stranger, app, { EXISTING: "stolen", NEW: "x" });
    expect(res.status).toBe(403);
    expect(await config(owner, app)).toEqual({ EXISTING: "kept" });
    expect(await releases(owner, app)).toEqual(before);
  });

  it("answers 404 for an unknown app", async () => {
    const owner = await makeAccount();
    const res = await patch(owner, "no-such-app-here", { FOO: "bar" });
    expect(res.status).toBe(404);
    expect(res.body.resource).toBe("app");
  });

  it("keeps awkward values exactly, in the config and in the release", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    const values = {
      UNICODE: "héllo wörld ✓ 日本語 🚀",
      EQUALS: "a=b=c==",
      URL: "postgres://user:p%40ss@host:5432/db?sslmode=require&x=1",
      QUOTES: `it's "quoted" \`back\``,
      SQL: "'; DROP TABLE config_vars; --",
      BACKSLASH: "C:\\path\\to\\file \\n \\u0000",
      NEWLINES: "line one\nline two\r\n\ttabbed",
      JSON_TEXT: '{"a":[1,2,{"b":null}]}',
      EMPTY: "",
      SPACES: "  padded  ",
      DOLLAR: "$HOME ${PATH} $(whoami)",
    };
    const res = await patch(owner, app, values);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(values);
    expect(await config(owner, app)).toEqual(values);
    const latest = (await releases(owner, app)).at(-1)!;
    expect((await api(`/apps/${app}/releases/${latest.version}/config-vars`, { token: owner.token })).body).toEqual(values);
  });

  it("serializes concurrent patches into distinct, consecutive releases", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    const keys = Array.from({ length: 10 }, (_, i) => `KEY_${i}`);
    const results = await Promise.all(keys.map((key) => patch(owner, app, { [key]: key.toLowerCase() })));
    for (const r of results) expect(r.status).toBe(200);

    expect(await config(owner, app)).toEqual(Object.fromEntries(keys.map((k) => [k, k.toLowerCase()])));
    const list = await releases(owner, app);
    expect(list.map((r) => r.version)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    const described = list.slice(1).map((r) => /^Set (KEY_\d) config vars$/.exec(r.description)?.[1]);
    expect([...described].sort()).toEqual(keys);
    // Each release saw every change before it: its snapshot grows by one key each time.
    for (const r of list.slice(1)) {
      const snapshot = (await api(`/apps/${app}/releases/${r.version}/config-vars`, { token: owner.token })).body;
      expect(Object.keys(snapshot)).toHaveLength(r.version - 1);
      expect(snapshot).toHaveProperty(described[r.version - 2]!);
    }
  });
});
