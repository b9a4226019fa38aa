import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { deploySlug, destroyApp, waitFor } from "../support/slugs.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

afterAll(closeDb);

/** Apps made here; their dynos stop when they are deleted. */
const made: Array<{ token: string; name: string }> = [];
afterEach(async () => {
  for (const a of made.splice(0)) await destroyApp(a.token, a.name);
});

/** A fresh owner and an app released with a web and a worker process type (web=1, worker=0). */
async function deployed() {
  const owner = await makeAccount();
  const app = await makeApp(owner);
  made.push({ token: owner.token, name: app.name });
  await deploySlug(owner.token, app.name, { web: `node server.js ${app.name}`, worker: `node worker.js ${app.name}` });
  return { owner, app };
}

const quantities = (list: any[]) => list.map((f) => [f.type, f.quantity, f.size]);
const formationOf = async (owner: TestAccount, app: string) => (await api(`/apps/${app}/formation`, { token: owner.token })).body;

describe("GET /apps/{app}/formation", () => {
  it("lists the released slug's process types in Heroku's shape: web at 1, others at 0, on Eco", async () => {
    const { owner, app } = await deployed();
    const res = await api(`/apps/${app.name}/formation`, { token: owner.token });
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
    const [web, worker] = res.body;
    expect(web).toEqual({
      id: expect.stringMatching(UUID),
      app: { id: app.id, name: app.name },
      type: "web",
      command: `node server.js ${app.name}`,
      quantity: 1,
      size: "Eco",
      dyno_size: { id: expect.stringMatching(UUID), name: "Eco" },
      created_at: expect.stringMatching(TIME),
      updated_at: expect.stringMatching(TIME),
    });
    expect(worker).toMatchObject({ type: "worker", command: `node worker.js ${app.name}`, quantity: 0, size: "Eco" });

    const one = await api(`/apps/${app.name}/formation/web`, { token: owner.token });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(web);
  });

  it("is empty before the first deploy", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    made.push({ token: owner.token, name: app.name });
    expect((await api(`/apps/${app.name}/formation`, { token: owner.token })).body).toEqual([]);
  });

  it("answers 404 not_found for an unknown process type", async () => {
    const { owner, app } = await deployed();
    const res = await api(`/apps/${app.name}/formation/clock`, { token: owner.token });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "formation" });
  });

  it("is refused without a token and for another account's app", async () => {
    const { owner, app } = await deployed();
    const stranger = await makeAccount();
    expect((await api(`/apps/${app.name}/formation`)).status).toBe(401);
    const res = await api(`/apps/${app.name}/formation`, { token: stranger.token });
    expect(res.status).toBe(403);
    expect(res.body.id).toBe("forbidden");
    const patch = await api(`/apps/${app.name}/formation`, { method: "PATCH", token: stranger.token, body: { updates: [{ type: "web", quantity: "3" }] } });
    expect(patch.status).toBe(403);
    expect(quantities(await formationOf(owner, app.name))).toEqual([
      ["web", 1, "Eco"],
      ["worker", 0, "Eco"],
    ]);
  });
});

describe("PATCH /apps/{app}/formation", () => {
  it("applies a batch as the CLI sends it (string quantities, relative and absolute) and the dynos follow", async () => {
    const { owner, app } = await deployed();
    const res = await api(`/apps/${app.name}/formation`, {
      method: "PATCH",
      token: owner.token,
      body: {
        updates: [
          { type: "web", quantity: "2", size: "standard-1x" },
          { type: "worker", quantity: "+1", size: "standard-2x" },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(quantities(res.body)).toEqual([
      ["web", 2, "Standard-1X"],
      ["worker", 1, "Standard-2X"],
    ]);
    expect(res.body[1].dyno_size.name).toBe("Standard-2X");
    expect(quantities(await formationOf(owner, app.name))).toEqual([
      ["web", 2, "Standard-1X"],
      ["worker", 1, "Standard-2X"],
    ]);
    expect((await api(`/apps/${app.name}`, { token: owner.token })).body.process_tier).toBe("production");

    const dynos = await api(`/apps/${app.name}/dynos`, { token: owner.token });
    expect(dynos.body.map((d: any) => [d.name, d.size])).toEqual([
      ["web.1", "Standard-1X"],
      ["web.2", "Standard-1X"],
      ["worker.1", "Standard-2X"],
    ]);

    const down = await api(`/apps/${app.name}/formation`, {
      method: "PATCH",
      token: owner.token,
      body: {
        updates: [
          { type: "web", quantity: "-1" },
          { type: "worker", quantity: 0 },
        ],
      },
    });
    expect(down.status).toBe(200);
    expect(quantities(down.body)).toEqual([
      ["web", 1, "Standard-1X"],
      ["worker", 0, "Standard-2X"],
    ]);
    expect((await api(`/apps/${app.name}/dynos`, { token: owner.token })).body.map((d: any) => d.name)).toEqual(["web.1"]);
  });

  it.each([
    ["eco", "Eco"],
    ["BASIC", "Basic"],
    ["standard-1x", "Standard-1X"],
    ["Standard-2X", "Standard-2X"],
  ])("takes the size %s case-insensitively as %s", async (given, stored) => {
    const { owner, app } = await deployed();
    const res = await api(`/apps/${app.name}/formation`, { method: "PATCH", token: owner.token, body: { updates: [{ type: "worker", size: given }] } });
    expect(res.status).toBe(200);
    expect(quantities(res.body)).toEqual([["worker", 0, stored]]);
  });

  describe("refuses, leaving the formation unchanged", () => {
    let owner: TestAccount;
    let name: string;
    let before: unknown;
    beforeAll(async () => {
      owner = await makeAccount();
      name = (await makeApp(owner)).name;
      await deploySlug(owner.token, name, { web: `node server.js ${name}`, worker: `node worker.js ${name}` });
      before = await formationOf(owner, name);
    });
    const patch = (body: unknown) => api(`/apps/${name}/formation`, { method: "PATCH", token: owner.token, body });
    afterAll(() => destroyApp(owner.token, name));
    // A refusal that changed something anyway is put back, so that one failure does not hide the next.
    afterEach(async () => {
      if (JSON.stringify(await formationOf(owner, name)) === JSON.stringify(before)) return;
      await patch({
        updates: [
          { type: "web", quantity: "1", size: "Eco" },
          { type: "worker", quantity: "0", size: "Eco" },
        ],
      });
      before = await formationOf(owner, name);
    });

    it.each([
      ["an unknown size", 422, "invalid_params", { updates: [{ type: "web", size: "Performance-XL" }] }],
      [
        "an unknown process type in a batch",
        404,
        "not_found",
        {
          updates: [
            { type: "web", quantity: "3" },
            { type: "clock", quantity: "1" },
          ],
        },
      ],
      ["a quantity below 0", 422, "invalid_params", { updates: [{ type: "web", quantity: "-2" }] }],
      ["a negative number", 422, "invalid_params", { updates: [{ type: "web", quantity: -1 }] }],
      ["a huge quantity", 422, "invalid_params", { updates: [{ type: "web", quantity: "101" }] }],
      ["a huge number", 422, "invalid_params", { updates: [{ type: "web", quantity: 1_000_000 }] }],
      ["a relative step past the limit", 422, "invalid_params", { updates: [{ type: "web", quantity: "+100" }] }],
      ["a fractional quantity", 422, "invalid_params", { updates: [{ type: "web", quantity: 1.5 }] }],
      ["a quantity that is not a number", 422, "invalid_params", { updates: [{ type: "web", quantity: "two" }] }],
      ["a null quantity", 422, "invalid_params", { updates: [{ type: "web", quantity: null }] }],
      ["an update without a type", 422, "invalid_params", { updates: [{ quantity: "2" }] }],
      ["an unknown field in an update", 422, "invalid_params", { updates: [{ type: "web", quantity: "2", region: "eu" }] }],
      ["no updates", 422, "invalid_params", { updates: [] }],
      ["updates that are not a list", 422, "invalid_params", { updates: "web=2" }],
      ["a body without updates", 422, "invalid_params", { type: "web", quantity: "2" }],
    ])("%s (%i)", async (_label, status, id, body) => {
      const res = await patch(body);
      expect(res.status).toBe(status);
      expect(res.body.id).toBe(id);
      expect(typeof res.body.message).toBe("string");
      expect(await formationOf(owner, name)).toEqual(before);
    });

    it("malformed JSON and non-JSON bodies (400)", async () => {
      const bad = await api(`/apps/${name}/formation`, {
        method: "PATCH",
        token: owner.token,
        rawBody: '{"updates": [',
        headers: { "Content-Type": "application/json" },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.id).toBe("bad_request");
      const text = await api(`/apps/${name}/formation`, { method: "PATCH", token: owner.token, rawBody: "web=2", headers: { "Content-Type": "text/plain" } });
      expect(text.status).toBe(400);
      expect(await formationOf(owner, name)).toEqual(before);
    });

    it("bad updates of one process type (PATCH /formation/{type})", async () => {
      const one = (type: string, body: unknown) => api(`/apps/${name}/formation/${type}`, { method: "PATCH", token: owner.token, body });
      expect((await one("clock", { quantity: "1" })).body).toMatchObject({ id: "not_found" });
      expect((await one("web", { quantity: "-5" })).status).toBe(422);
      expect((await one("web", { size: "XL" })).status).toBe(422);
      expect((await one("web", { type: "worker", quantity: "2" })).status).toBe(422);
      expect(await formationOf(owner, name)).toEqual(before);
    });
  });
});

describe("PATCH /apps/{app}/formation/{type}", () => {
  it("scales and resizes one process type and answers with it", async () => {
    const { owner, app } = await deployed();
    const web = await api(`/apps/${app.name}/formation/web`, { method: "PATCH", token: owner.token, body: { size: "standard-1x" } });
    expect(web.body).toMatchObject({ type: "web", quantity: 1, size: "Standard-1X" });
    const res = await api(`/apps/${app.name}/formation/worker`, { method: "PATCH", token: owner.token, body: { quantity: "+2", size: "standard-2x" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ type: "worker", quantity: 2, size: "Standard-2X", app: { name: app.name } });
    const again = await api(`/apps/${app.name}/formation/worker`, { method: "PATCH", token: owner.token, body: { quantity: 1 } });
    expect(again.body).toMatchObject({ type: "worker", quantity: 1, size: "Standard-2X" });
    expect(quantities(await formationOf(owner, app.name))).toEqual([
      ["web", 1, "Standard-1X"],
      ["worker", 1, "Standard-2X"],
    ]);
  });
});

describe("Heroku's rules for Eco and Basic dynos", () => {
  const patch = (owner: TestAccount, app: string, updates: unknown[]) =>
    api(`/apps/${app}/formation`, { method: "PATCH", token: owner.token, body: { updates } });

  it.each([
    ["Eco", [{ type: "web", quantity: "2" }], "Cannot update to more than 1 Eco size dynos per process type."],
    ["Basic", [{ type: "web", quantity: "2", size: "basic" }], "Cannot update to more than 1 Basic size dynos per process type."],
    ["Eco", [{ type: "worker", quantity: "1", size: "standard-1x" }], "Cannot mix Eco dynos with other sizes in one app (web is Eco, worker is Standard-1X)."],
    [
      "Basic",
      [
        { type: "web", size: "basic" },
        { type: "worker", quantity: "1" },
      ],
      "Cannot mix Eco dynos with other sizes in one app (worker is Eco, web is Basic).",
    ],
  ])("refuses what %s dynos cannot do, changing nothing", async (_tier, updates, message) => {
    const { owner, app } = await deployed();
    const before = await formationOf(owner, app.name);
    const res = await patch(owner, app.name, updates);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ id: "invalid_params" });
    expect(res.body.message).toContain(message);
    expect(await formationOf(owner, app.name)).toEqual(before);
    expect((await api(`/apps/${app.name}/dynos`, { token: owner.token })).body.map((d: any) => d.name)).toEqual(["web.1"]);
  });

  it("changes every process type's size at once, as heroku ps:type does, and then scales", async () => {
    const { owner, app } = await deployed();
    const basic = await patch(owner, app.name, [
      { type: "web", quantity: "1", size: "basic" },
      { type: "worker", quantity: "1", size: "basic" },
    ]);
    expect(basic.status).toBe(200);
    expect(quantities(await formationOf(owner, app.name))).toEqual([
      ["web", 1, "Basic"],
      ["worker", 1, "Basic"],
    ]);
    const professional = await patch(owner, app.name, [
      { type: "web", quantity: "3", size: "standard-1x" },
      { type: "worker", size: "standard-2x" },
    ]);
    expect(professional.status).toBe(200);
    expect(quantities(await formationOf(owner, app.name))).toEqual([
      ["web", 3, "Standard-1X"],
      ["worker", 1, "Standard-2X"],
    ]);
  });
});

describe("GET /apps/{app}/dynos", () => {
  it("lists the running dynos in Heroku's shape and shows one by name or id", async () => {
    const { owner, app } = await deployed();
    const release = (await api(`/apps/${app.name}/releases/2`, { token: owner.token })).body;
    const list = await waitFor("web.1 up", async () => {
      const res = await api(`/apps/${app.name}/dynos`, { token: owner.token });
      return res.body[0]?.state === "up" ? res.body : false;
    });
    expect(list).toEqual([
      {
        id: expect.stringMatching(UUID),
        app: { id: app.id, name: app.name },
        attach_url: null,
        command: `node server.js ${app.name}`,
        created_at: expect.stringMatching(TIME),
        name: "web.1",
        release: { id: release.id, version: 2 },
        size: "Eco",
        state: "up",
        type: "web",
        updated_at: expect.stringMatching(TIME),
      },
    ]);
    const byName = await api(`/apps/${app.name}/dynos/web.1`, { token: owner.token });
    expect(byName.status).toBe(200);
    expect(byName.body).toEqual(list[0]);
    expect((await api(`/apps/${app.name}/dynos/${list[0].id}`, { token: owner.token })).body).toEqual(list[0]);
  });

  it("is empty before the first deploy, and answers 404 for an unknown dyno", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    made.push({ token: owner.token, name: app.name });
    expect((await api(`/apps/${app.name}/dynos`, { token: owner.token })).body).toEqual([]);
    const missing = await api(`/apps/${app.name}/dynos/web.9`, { token: owner.token });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ id: "not_found", resource: "dyno" });
  });

  it("is refused for another account's app", async () => {
    const { app } = await deployed();
    const stranger = await makeAccount();
    expect((await api(`/apps/${app.name}/dynos`, { token: stranger.token })).status).toBe(403);
    expect((await api(`/apps/${app.name}/dynos/web.1`, { token: stranger.token })).status).toBe(403);
  });
});
