import { afterAll, describe, expect, it } from "vitest";
import { api, get, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, makeApp } from "../support/factories.ts";

afterAll(closeDb);

describe("POST /apps", () => {
  it("creates a named app with v1 and every field the CLI reads", async () => {
    const owner = await makeAccount();
    const name = appName();
    const res = await api("/apps", { method: "POST", token: owner.token, body: { name } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name,
      owner: { id: owner.id, email: owner.email },
      region: { name: "us" },
      stack: { name: "heroku-24" },
      build_stack: { name: "heroku-24" },
      generation: { name: "cedar" },
      process_tier: "eco",
      repo_size: null,
      slug_size: null,
      web_url: `https://${name}.apps.localhost:${platform().port}/`,
      git_url: `https://localhost:${platform().port}/${name}.git`,
    });
    const releases = await api(`/apps/${name}/releases`, { token: owner.token });
    expect(releases.body.map((r: any) => [r.version, r.description, r.current])).toEqual([[1, "Initial release", true]]);
  });

  it("picks a random two-words-and-number name when none is given", async () => {
    const owner = await makeAccount();
    const res = await api("/apps", { method: "POST", token: owner.token, body: {} });
    expect(res.status).toBe(201);
    expect(res.body.name).toMatch(/^[a-z]+-[a-z]+-\d{5}$/);
  });

  it("refuses a taken name, even another account's, and changes nothing", async () => {
    const a = await makeAccount();
    const b = await makeAccount();
    const app = await makeApp(a);
    const res = await api("/apps", { method: "POST", token: b.token, body: { name: app.name } });
    expect(res.status).toBe(422);
    expect(res.body).toEqual({ id: "invalid_params", message: "Name is already taken" });
    expect((await api("/apps", { token: b.token })).body).toEqual([]);
  });

  it.each([
    ["too short", { name: "ab" }],
    ["uppercase", { name: "MyApp" }],
    ["leading digit", { name: "1app" }],
    ["trailing dash", { name: "app-" }],
    ["too long", { name: "a".repeat(31) }],
    ["SQL metacharacters", { name: "x'; drop table apps; --" }],
    ["unicode", { name: "appé-ünï" }],
    ["wrong type", { name: 42 }],
    ["unknown field", { name: "fine-name", colour: "blue" }],
    ["unknown region", { region: "mars" }],
  ])("answers 422 for %s", async (_label, body) => {
    const owner = await makeAccount();
    const res = await api("/apps", { method: "POST", token: owner.token, body });
    expect(res.status).toBe(422);
    expect(res.body.id).toBe("invalid_params");
    expect(typeof res.body.message).toBe("string");
    expect((await api("/apps", { token: owner.token })).body).toEqual([]);
  });

  it("answers 400 for malformed JSON and non-JSON bodies", async () => {
    const owner = await makeAccount();
    const bad = await api("/apps", { method: "POST", token: owner.token, rawBody: "{not json", headers: { "Content-Type": "application/json" } });
    expect(bad.status).toBe(400);
    expect(bad.body.id).toBe("bad_request");
    const text = await api("/apps", { method: "POST", token: owner.token, rawBody: "name=x", headers: { "Content-Type": "text/plain" } });
    expect(text.status).toBe(400);
    expect((await api("/apps", { token: owner.token })).body).toEqual([]);
  });
});

describe("GET /apps and /users/~/apps", () => {
  it("lists only the caller's apps and pages with Range / Next-Range", async () => {
    const owner = await makeAccount();
    const other = await makeAccount();
    await makeApp(other);
    const names = [appName("p"), appName("p"), appName("p")].sort();
    for (const n of names) await makeApp(owner, n);

    const all = await api("/users/~/apps", { token: owner.token });
    expect(all.status).toBe(200);
    expect(all.body.map((a: any) => a.name)).toEqual(names);

    const first = await api("/apps", { token: owner.token, headers: { Range: "name ..; max=2" } });
    expect(first.status).toBe(206);
    expect(first.body.map((a: any) => a.name)).toEqual(names.slice(0, 2));
    const next = first.headers.get("next-range")!;
    expect(next).toBe(`name ]${names[1]}..; max=2, order=asc`);
    const second = await api("/apps", { token: owner.token, headers: { Range: next } });
    expect(second.status).toBe(200);
    expect(second.body.map((a: any) => a.name)).toEqual(names.slice(2));
  });

  it("rejects a Range on an unknown field", async () => {
    const owner = await makeAccount();
    const res = await api("/apps", { token: owner.token, headers: { Range: "colour ..; max=2" } });
    expect(res.status).toBe(400);
    expect(res.body.id).toBe("bad_request");
  });
});

describe("GET/PATCH/DELETE /apps/{app}", () => {
  it("finds an app by name or id", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    expect((await api(`/apps/${app.name}`, { token: owner.token })).body.id).toBe(app.id);
    expect((await api(`/apps/${app.id}`, { token: owner.token })).body.name).toBe(app.name);
  });

  it("answers Heroku's not_found for an unknown app", async () => {
    const owner = await makeAccount();
    const res = await api("/apps/no-such-app-here", { token: owner.token });
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ id: "not_found", message: "Couldn't find that app.", resource: "app" });
  });

  it("renames and toggles maintenance; a taken name is refused", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const other = await makeApp(owner);
    const taken = await api(`/apps/${app.name}`, { method: "PATCH", token: owner.token, body: { name: other.name } });
    expect(taken.status).toBe(422);
    const renamed = appName("renamed");
    const res = await api(`/apps/${app.name}`, { method: "PATCH", token: owner.token, body: { name: renamed, maintenance: true } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: app.id, name: renamed, maintenance: true });
    expect((await api(`/apps/${app.name}`, { token: owner.token })).status).toBe(404);
  });

  it("deletes an app with its releases and config", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { A: "1" } });
    const res = await api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
    expect(res.status).toBe(200);
    expect(res.body.name).toBe(app.name);
    expect((await api(`/apps/${app.name}`, { token: owner.token })).status).toBe(404);
    // The name is free again.
    expect((await api("/apps", { method: "POST", token: owner.token, body: { name: app.name } })).status).toBe(201);
  });

  it("lists the owner as the only collaborator and has no pipeline coupling", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const collabs = await api(`/apps/${app.name}/collaborators`, { token: owner.token });
    expect(collabs.body.map((c: any) => [c.user.email, c.role])).toEqual([[owner.email, "owner"]]);
    const coupling = await api(`/apps/${app.name}/pipeline-couplings`, { token: owner.token });
    expect(coupling.status).toBe(404);
    expect(coupling.body.id).toBe("not_found");
  });
});

describe("app hosts", () => {
  it("shows the welcome page for a new app and a no-such-app page otherwise", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const welcome = await get(`https://${app.name}.apps.localhost:${platform().port}/`);
    expect(welcome.status).toBe(200);
    expect(welcome.text).toContain("Welcome to your new app!");
    const missing = await get(`https://no-such-app-zz.apps.localhost:${platform().port}/`);
    expect(missing.status).toBe(404);
    expect(missing.text).toContain("No app is configured at this address");
  });
});
