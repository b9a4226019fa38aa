import { afterAll, afterEach, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { deploySlug, destroyApp } from "../support/slugs.ts";

// An owner lets another account into an app (`heroku access:add`): the collaborator works on
// it as the owner would, except for deleting or renaming it and deciding who else gets in.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

afterAll(closeDb);

const made: Array<{ token: string; name: string }> = [];
afterEach(async () => {
  for (const a of made.splice(0)) await destroyApp(a.token, a.name);
});

/** An owner, their app, and a second account added to it as a collaborator. */
async function shared() {
  const owner = await makeAccount();
  const collaborator = await makeAccount();
  const app = await makeApp(owner);
  made.push({ token: owner.token, name: app.name });
  const added = await api(`/apps/${app.name}/collaborators`, { method: "POST", token: owner.token, body: { user: collaborator.email.toUpperCase() } });
  expect(added.status, added.text).toBe(201);
  return { owner, collaborator, app, added: added.body };
}

const members = async (owner: TestAccount, app: string) =>
  (await api(`/apps/${app}/collaborators`, { token: owner.token })).body.map((m: any) => [m.role, m.user.email]);

describe("collaborators of an app", () => {
  it("are listed after the owner in Heroku's shape, found by email or id, and see the app among theirs", async () => {
    const { owner, collaborator, app, added } = await shared();
    expect(added).toEqual({
      id: expect.stringMatching(UUID),
      app: { id: app.id, name: app.name },
      permissions: [],
      role: "collaborator",
      user: { id: collaborator.id, email: collaborator.email, federated: false },
      created_at: expect.stringMatching(TIME),
      updated_at: expect.stringMatching(TIME),
    });
    const list = await api(`/apps/${app.name}/collaborators`, { token: collaborator.token });
    expect(list.status).toBe(200);
    expect(list.body.map((m: any) => [m.role, m.user.email])).toEqual([
      ["owner", owner.email],
      ["collaborator", collaborator.email],
    ]);
    for (const key of [collaborator.email, added.id]) {
      expect((await api(`/apps/${app.name}/collaborators/${encodeURIComponent(key)}`, { token: owner.token })).body).toEqual(added);
    }
    const info = await api(`/apps/${app.name}`, { token: collaborator.token });
    expect(info.status).toBe(200);
    expect(info.body.owner).toEqual({ id: owner.id, email: owner.email });
    const theirs = await api("/users/~/apps", { token: collaborator.token });
    expect(theirs.body.map((a: any) => [a.name, a.owner.email])).toEqual([[app.name, owner.email]]);
  });

  it("deploy, scale, set config, read logs and toggle maintenance, as the owner would", async () => {
    const { collaborator, app } = await shared();
    await deploySlug(collaborator.token, app.name);
    const config = await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: collaborator.token, body: { SET_BY: "collaborator" } });
    expect(config.status).toBe(200);
    expect(config.body.SET_BY).toBe("collaborator");
    const scaled = await api(`/apps/${app.name}/formation/web`, { method: "PATCH", token: collaborator.token, body: { quantity: 0 } });
    expect(scaled.body).toMatchObject({ quantity: 0 });
    const maintenance = await api(`/apps/${app.name}`, { method: "PATCH", token: collaborator.token, body: { maintenance: true } });
    expect(maintenance.body).toMatchObject({ maintenance: true });
    const releases = await api(`/apps/${app.name}/releases`, { token: collaborator.token });
    expect(releases.body.at(-1)).toMatchObject({ description: "Set SET_BY config vars", user: { email: collaborator.email } });
    const logs = await api(`/apps/${app.name}/log-sessions`, { method: "POST", token: collaborator.token, body: { lines: 10 } });
    expect(logs.status).toBe(201);
  });

  it("cannot delete or rename the app, nor let anyone in or out; nothing changes", async () => {
    const { owner, collaborator, app } = await shared();
    const third = await makeAccount();
    const before = await members(owner, app.name);
    const attempts = [
      await api(`/apps/${app.name}`, { method: "DELETE", token: collaborator.token }),
      await api(`/apps/${app.name}`, { method: "PATCH", token: collaborator.token, body: { name: `${app.name}-x` } }),
      await api(`/apps/${app.name}/collaborators`, { method: "POST", token: collaborator.token, body: { user: third.email } }),
      await api(`/apps/${app.name}/collaborators/${collaborator.email}`, { method: "DELETE", token: collaborator.token }),
      await api(`/apps/${app.name}/collaborators/${owner.email}`, { method: "DELETE", token: collaborator.token }),
    ];
    for (const res of attempts) {
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ id: "forbidden", message: expect.stringContaining(`Only the owner of ${app.name} (${owner.email}) can`) });
    }
    const after = await api(`/apps/${app.name}`, { token: owner.token });
    expect(after.body.name).toBe(app.name);
    expect(await members(owner, app.name)).toEqual(before);
  });

  it("lose access the moment the owner removes them", async () => {
    const { owner, collaborator, app } = await shared();
    const removed = await api(`/apps/${app.name}/collaborators/${collaborator.email}`, { method: "DELETE", token: owner.token });
    expect(removed.status).toBe(200);
    expect(removed.body.user.email).toBe(collaborator.email);
    const denied = await api(`/apps/${app.name}`, { token: collaborator.token });
    expect(denied.status).toBe(403);
    expect(denied.body.id).toBe("forbidden");
    expect((await api("/users/~/apps", { token: collaborator.token })).body).toEqual([]);
    expect(await members(owner, app.name)).toEqual([["owner", owner.email]]);
  });

  it.each([
    ["an email no account has", (w: World) => ({ user: `nobody-${w.app.name}@example.com` }), 404, "not_found"],
    ["the owner", (w: World) => ({ user: w.owner.email }), 422, "invalid_params"],
    ["an existing collaborator", (w: World) => ({ user: w.collaborator.email }), 422, "invalid_params"],
    ["no user", () => ({}), 422, "invalid_params"],
    ["a user with spaces", () => ({ user: "a b@example.com" }), 422, "invalid_params"],
    ["an unknown field", (w: World) => ({ user: w.collaborator.email, permissions: ["manage"] }), 422, "invalid_params"],
  ])("refuses adding %s, changing nothing", async (_label, body, status, id) => {
    const w = await shared();
    const before = await members(w.owner, w.app.name);
    const res = await api(`/apps/${w.app.name}/collaborators`, { method: "POST", token: w.owner.token, body: body(w) });
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ id, message: expect.any(String) });
    expect(await members(w.owner, w.app.name)).toEqual(before);
  });

  it("refuses removing the owner or someone who is not a collaborator, changing nothing", async () => {
    const w = await shared();
    const before = await members(w.owner, w.app.name);
    const owner = await api(`/apps/${w.app.name}/collaborators/${w.owner.email}`, { method: "DELETE", token: w.owner.token });
    expect(owner.status).toBe(422);
    expect(owner.body.id).toBe("invalid_params");
    const stranger = await api(`/apps/${w.app.name}/collaborators/nobody@example.com`, { method: "DELETE", token: w.owner.token });
    expect(stranger.status).toBe(404);
    expect(stranger.body).toMatchObject({ id: "not_found", resource: "collaborator" });
    expect(await members(w.owner, w.app.name)).toEqual(before);
  });
});

type World = Awaited<ReturnType<typeof shared>>;
