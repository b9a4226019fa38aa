import { afterAll, afterEach, describe, expect, it } from "vitest";
import { api, visitHost } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { deploySlug, destroyApp, waitFor } from "../support/slugs.ts";

// Custom domains (`heroku domains:add`): the router answers a request whose Host is one of
// an app's domains with that app, and nothing else changes hands.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const APPS_DOMAIN = "apps.localhost";

afterAll(closeDb);

const made: Array<{ token: string; name: string }> = [];
afterEach(async () => {
  for (const a of made.splice(0)) await destroyApp(a.token, a.name);
});

async function ownApp() {
  const owner = await makeAccount();
  const app = await makeApp(owner);
  made.push({ token: owner.token, name: app.name });
  return { owner, app };
}

const add = (owner: TestAccount, app: string, hostname: string) =>
  api(`/apps/${app}/domains`, { method: "POST", token: owner.token, body: { hostname, sni_endpoint: null } });
const hostnames = async (owner: TestAccount, app: string) =>
  (await api(`/apps/${app}/domains`, { token: owner.token })).body.map((d: any) => [d.kind, d.hostname]);

describe("custom domains", () => {
  it("are added in Heroku's shape, listed after the app's own name, found by hostname or id, and removed", async () => {
    const { owner, app } = await ownApp();
    const host = `www.${app.name}.test`;
    const res = await add(owner, app.name, `WWW.${app.name}.test.`);
    expect(res.status, res.text).toBe(201);
    expect(res.body).toEqual({
      id: expect.stringMatching(UUID),
      app: { id: app.id, name: app.name },
      hostname: host,
      kind: "custom",
      cname: `${app.name}.${APPS_DOMAIN}`,
      status: "succeeded",
      acm_status: null,
      acm_status_reason: null,
      sni_endpoint: null,
      created_at: expect.stringMatching(TIME),
      updated_at: expect.stringMatching(TIME),
    });
    expect(await hostnames(owner, app.name)).toEqual([
      ["heroku", `${app.name}.${APPS_DOMAIN}`],
      ["custom", host],
    ]);
    for (const key of [host, res.body.id]) expect((await api(`/apps/${app.name}/domains/${key}`, { token: owner.token })).body).toEqual(res.body);
    const removed = await api(`/apps/${app.name}/domains/${host}`, { method: "DELETE", token: owner.token });
    expect(removed.status).toBe(200);
    expect(removed.body.hostname).toBe(host);
    expect(await hostnames(owner, app.name)).toEqual([["heroku", `${app.name}.${APPS_DOMAIN}`]]);
    expect((await api(`/apps/${app.name}/domains/${host}`, { token: owner.token })).status).toBe(404);
  });

  it("are answered by the router with the app, a wildcard one level deep, and no longer once removed", async () => {
    const { owner, app } = await ownApp();
    await deploySlug(owner.token, app.name);
    expect((await add(owner, app.name, `shop.${app.name}.test`)).status).toBe(201);
    expect((await add(owner, app.name, `*.${app.name}.example`)).status).toBe(201);
    for (const host of [`shop.${app.name}.test`, `eu.${app.name}.example:443`]) {
      const answer = await waitFor(`${host} answered by ${app.name}`, async () => {
        const r = await visitHost(host);
        return r.status === 200 && JSON.parse(r.text).args[0] === app.name ? r : false;
      });
      expect(JSON.parse(answer.text).dyno).toBe("web.1");
    }
    // Not a level deeper, and not the wildcard's own apex.
    for (const host of [`a.b.${app.name}.example`, `${app.name}.example`]) expect((await visitHost(host)).status).not.toBe(200);
    await api(`/apps/${app.name}/domains/shop.${app.name}.test`, { method: "DELETE", token: owner.token });
    await waitFor("the removed domain no longer routed to the app", async () => (await visitHost(`shop.${app.name}.test`)).status !== 200);
  });

  it("belong to one app: another account cannot add one already taken, nor reach it", async () => {
    const { owner, app } = await ownApp();
    const other = await ownApp();
    const host = `api.${app.name}.test`;
    expect((await add(owner, app.name, host)).status).toBe(201);
    const again = await add(owner, app.name, host);
    expect(again.status).toBe(422);
    expect(again.body).toEqual({ id: "invalid_params", message: `${host} is already added to ${app.name}.` });
    const stolen = await add(other.owner, other.app.name, host);
    expect(stolen.status).toBe(422);
    expect(stolen.body).toEqual({ id: "invalid_params", message: `${host} is already in use by another app.` });
    expect((await api(`/apps/${app.name}/domains/${host}`, { method: "DELETE", token: other.owner.token })).status).toBe(403);
    expect((await api(`/apps/${other.app.name}/domains/${host}`, { method: "DELETE", token: other.owner.token })).status).toBe(404);
    expect(await hostnames(owner, app.name)).toContainEqual(["custom", host]);
    expect(await hostnames(other.owner, other.app.name)).toEqual([["heroku", `${other.app.name}.${APPS_DOMAIN}`]]);
  });

  it.each([
    ["an empty name", ""],
    ["one label", "intranet"],
    ["an IP address", "10.0.0.1"],
    ["a label with a space", "my shop.example.com"],
    ["a label that ends with a hyphen", "shop-.example.com"],
    ["a label longer than 63", `${"a".repeat(64)}.example.com`],
    ["a wildcard not first", "www.*.example.com"],
    ["the platform's apps domain", `other-app.${APPS_DOMAIN}`],
    ["a wildcard over the apps domain", `*.${APPS_DOMAIN}`],
    ["the API's host", "localhost"],
  ])("refuses %s with invalid_params, changing nothing", async (_label, hostname) => {
    const { owner, app } = await ownApp();
    const res = await add(owner, app.name, hostname);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ id: "invalid_params", message: expect.any(String) });
    expect(await hostnames(owner, app.name)).toEqual([["heroku", `${app.name}.${APPS_DOMAIN}`]]);
  });

  it("refuses uploaded certificates and unknown fields; the app's own name cannot be removed", async () => {
    const { owner, app } = await ownApp();
    const withCert = await api(`/apps/${app.name}/domains`, {
      method: "POST",
      token: owner.token,
      body: { hostname: `x.${app.name}.test`, sni_endpoint: "my-cert" },
    });
    expect(withCert.status).toBe(422);
    const unknown = await api(`/apps/${app.name}/domains`, { method: "POST", token: owner.token, body: { hostname: `x.${app.name}.test`, kind: "heroku" } });
    expect(unknown.status).toBe(422);
    const own = await api(`/apps/${app.name}/domains/${app.name}.${APPS_DOMAIN}`, { method: "DELETE", token: owner.token });
    expect(own.status).toBe(422);
    expect(await hostnames(owner, app.name)).toEqual([["heroku", `${app.name}.${APPS_DOMAIN}`]]);
    expect((await api(`/apps/${app.name}/sni-endpoints`, { token: owner.token })).body).toEqual([]);
  });
});
