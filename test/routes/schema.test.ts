import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { createAuthorization } from "../../src/services/access/authorizations.ts";
import { api, platform, tlsAgent, type ApiCall, type ApiResult } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { herokuSchema } from "../support/heroku-schema.ts";
import { mountedRoutes, routeOf } from "../support/mounted-routes.ts";
import { deploySlug, slugArchive } from "../support/slugs.ts";
import { putBlob, tarball } from "../support/sources.ts";

afterAll(closeDb);

const schema = herokuSchema();
/** Mounted routes whose answers were validated in this file. */
const validated = new Set<string>();

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;

/**
 * Calls the API, checks the status, then validates the body against the targetSchema
 * of the link Heroku's document gives for the same method and path. `deviations` names
 * the body paths where dynoplane knowingly differs from Heroku.
 */
async function conforming(path: string, call: ApiCall & { status: number; mayBeEmpty?: boolean; deviations?: string[] }): Promise<ApiResult> {
  const method = call.method ?? "GET";
  const res = await api(path, call);
  expect(res.status, `${method} ${path}: ${res.text}`).toBe(call.status);
  const link = schema.linkFor(method, path);
  expect(link, `a link in Heroku's schema for ${method} ${path}`).toBeDefined();
  if (Array.isArray(res.body) && !call.mayBeEmpty) expect(res.body.length, `${method} ${path} lists something to validate`).toBeGreaterThan(0);
  const errors = schema.validateResponse(method, path, res.body).filter((e) => !call.deviations?.some((p) => e.startsWith(`${p} `)));
  expect(errors, `${method} ${path} against ${link!.pointer}/targetSchema`).toEqual([]);
  const route = routeOf(method, path);
  if (route) validated.add(route);
  return res;
}

/** An owner with an app whose config has been set and unset, so it has several releases. */
async function appWithHistory(owner: TestAccount) {
  const app = await makeApp(owner);
  await conforming(`/apps/${app.name}/config-vars`, {
    method: "PATCH",
    token: owner.token,
    body: { DATABASE_URL: "postgres://u:p@db.example.com:5432/d", GREETING: "hello world", EMPTY: "" },
    status: 200,
  });
  await conforming(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: null }, status: 200 });
  return app;
}

describe("responses match Heroku's Platform API schema", () => {
  it("GET /account, before and after a password login", async () => {
    const owner = await makeAccount();
    const before = await conforming("/account", { token: owner.token, status: 200 });
    expect(before.body.last_login).toBeNull();
    await conforming("/oauth/authorizations", {
      method: "POST",
      headers: { Authorization: basic(owner.email, owner.password) },
      body: { description: "Heroku CLI login from test", expires_in: 2592000, scope: ["global"] },
      status: 201,
    });
    const after = await conforming("/account", { token: owner.token, status: 200 });
    expect(after.body.email).toBe(owner.email);
  });

  it("eco dyno hours and app features", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await conforming(`/accounts/${owner.id}/actions/get-quota`, { token: owner.token, status: 200, mayBeEmpty: true });
    await conforming("/account/actions/get-quota", { token: owner.token, status: 200, mayBeEmpty: true });
    await conforming(`/apps/${app.name}/features`, { token: owner.token, status: 200 });
    await conforming("/account/features", { token: owner.token, status: 200, mayBeEmpty: true });
    await conforming(`/apps/${app.name}/metrics?range=1h`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/features/keep-alive`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/features/keep-alive`, { method: "PATCH", token: owner.token, body: { enabled: true }, status: 200 });
  });

  it("POST /oauth/authorizations by password and by token, then list, read and revoke", async () => {
    const owner = await makeAccount();
    const login = await conforming("/oauth/authorizations", {
      method: "POST",
      headers: { Authorization: basic(owner.email, owner.password) },
      body: { description: "Heroku CLI login from test", expires_in: 2592000, scope: ["global"] },
      status: 201,
    });
    expect(login.body.access_token.expires_in).toBeGreaterThan(0);
    const issued = await conforming("/oauth/authorizations", {
      method: "POST",
      token: owner.token,
      body: { description: "deploy bot" },
      status: 201,
    });
    expect(issued.body.access_token.expires_in).toBeNull();

    const list = await conforming("/oauth/authorizations", { token: owner.token, status: 200 });
    expect(list.body.map((a: any) => a.id)).toEqual(expect.arrayContaining([login.body.id, issued.body.id]));
    await conforming(`/oauth/authorizations/${issued.body.id}`, { token: owner.token, status: 200 });

    await createAuthorization(await db(), owner.id, { description: "API key", isDefault: true }, { email: owner.email });
    const apiKey = await conforming("/oauth/authorizations/~", { token: owner.token, status: 200 });
    expect(apiKey.body.description).toBe("API key");

    const revoked = await conforming(`/oauth/authorizations/${issued.body.id}`, { method: "DELETE", token: owner.token, status: 200 });
    expect(revoked.body.id).toBe(issued.body.id);
    expect((await api("/account", { token: issued.body.access_token.token })).status).toBe(401);
  });

  it("DELETE /oauth/sessions/~ ends the calling token's session", async () => {
    const owner = await makeAccount();
    const session = await api("/oauth/authorizations", {
      method: "POST",
      headers: { Authorization: basic(owner.email, owner.password) },
      body: { description: "Heroku CLI login from test" },
    });
    expect(session.status).toBe(201);
    const listed = await conforming("/oauth/sessions", { token: session.body.access_token.token, status: 200 });
    expect(listed.body.map((s: { id: string }) => s.id)).toContain(session.body.id);
    const ended = await conforming("/oauth/sessions/~", { method: "DELETE", token: session.body.access_token.token, status: 200 });
    expect(ended.body.id).toBe(session.body.id);
    expect((await api("/account", { token: session.body.access_token.token })).status).toBe(401);
  });

  it("POST /oauth/authorizations/{id}/actions/regenerate-tokens gives a new token; the old one stops working", async () => {
    const owner = await makeAccount();
    const issued = await api("/oauth/authorizations", { method: "POST", token: owner.token, body: { description: "rotated", expires_in: 3600 } });
    const rotated = await conforming(`/oauth/authorizations/${issued.body.id}/actions/regenerate-tokens`, { method: "POST", token: owner.token, status: 200 });
    expect(rotated.body.id).toBe(issued.body.id);
    expect(rotated.body.access_token.token).not.toBe(issued.body.access_token.token);
    expect((await api("/account", { token: issued.body.access_token.token })).status).toBe(401);
    expect((await api("/account", { token: rotated.body.access_token.token })).status).toBe(200);
  });

  it("POST, GET, PATCH and DELETE /apps and the app lists", async () => {
    const owner = await makeAccount();
    const named = await conforming("/apps", {
      method: "POST",
      token: owner.token,
      body: { name: appName("schema"), region: "eu", stack: "heroku-22" },
      status: 201,
    });
    await conforming("/apps", { method: "POST", token: owner.token, body: {}, status: 201 });
    const listed = await conforming("/apps", { token: owner.token, status: 200 });
    expect(listed.body).toHaveLength(2);
    await conforming("/users/~/apps", { token: owner.token, status: 200 });
    await conforming(`/users/${owner.email}/apps`, { token: owner.token, status: 200 });
    await conforming(`/apps/${named.body.name}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${named.body.id}`, { token: owner.token, status: 200 });
    const renamed = await conforming(`/apps/${named.body.id}`, {
      method: "PATCH",
      token: owner.token,
      body: { name: appName("renamed"), maintenance: true, build_stack: "heroku-24" },
      status: 200,
    });
    expect(renamed.body.maintenance).toBe(true);
    const helper = await makeAccount();
    const added = await conforming(`/apps/${named.body.id}/collaborators`, {
      method: "POST",
      token: owner.token,
      body: { user: helper.email, silent: true },
      status: 201,
    });
    const members = await conforming(`/apps/${named.body.id}/collaborators`, { token: owner.token, status: 200 });
    expect(members.body.map((m: any) => m.role)).toEqual(["owner", "collaborator"]);
    await conforming(`/apps/${named.body.id}/collaborators/${added.body.id}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${named.body.id}/collaborators/${helper.email}`, { method: "DELETE", token: owner.token, status: 200 });
    // Heroku's schema gives a domain's hostname the uri format, which the bare names Heroku
    // itself answers with (www.example.com) do not meet.
    const bare = ["/hostname"];
    const host = `www.${named.body.name}.test`;
    const domain = await conforming(`/apps/${named.body.id}/domains`, {
      method: "POST",
      token: owner.token,
      body: { hostname: host, sni_endpoint: null },
      status: 201,
      deviations: bare,
    });
    const domainList = await conforming(`/apps/${named.body.id}/domains`, { token: owner.token, status: 200, deviations: ["/0/hostname", "/1/hostname"] });
    expect(domainList.body.map((d: any) => d.kind)).toEqual(["heroku", "custom"]);
    await conforming(`/apps/${named.body.id}/domains/${domain.body.id}`, { token: owner.token, status: 200, deviations: bare });
    await conforming(`/apps/${named.body.id}/domains/${host}`, {
      method: "PATCH",
      token: owner.token,
      body: { sni_endpoint: null },
      status: 200,
      deviations: bare,
    });
    await conforming(`/apps/${named.body.id}/domains/${host}`, { method: "DELETE", token: owner.token, status: 200, deviations: bare });
    await conforming(`/apps/${named.body.id}/sni-endpoints`, { token: owner.token, status: 200, mayBeEmpty: true });
    const addons = await conforming(`/apps/${named.body.id}/addons`, { token: owner.token, status: 200, mayBeEmpty: true });
    expect(Array.isArray(addons.body)).toBe(true);
    await conforming(`/apps/${named.body.id}`, { method: "DELETE", token: owner.token, status: 200 });
  });

  it("app webhooks, their events and deliveries", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    // Deliveries go to an allowed loopback port where nothing listens.
    const url = `https://127.0.0.1:${platform().idlePort}/hooks`;
    const made = await conforming(`/apps/${app.name}/webhooks`, {
      method: "POST",
      token: owner.token,
      body: { url, include: ["api:release"], level: "notify" },
      status: 201,
    });
    await conforming(`/apps/${app.name}/webhooks`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/webhooks/${made.body.id}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/webhooks/${made.body.id}`, { method: "PATCH", token: owner.token, body: { level: "sync" }, status: 200 });
    await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { HOOKED: "1" } });
    const events = await conforming(`/apps/${app.name}/webhook-events`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/webhook-events/${events.body[0].id}`, { token: owner.token, status: 200 });
    const deliveries = await conforming(`/apps/${app.name}/webhook-deliveries`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/webhook-deliveries/${deliveries.body[0].id}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/webhooks/${made.body.id}`, { method: "DELETE", token: owner.token, status: 200 });
  });

  it("GET and PATCH /apps/{app}/config-vars", async () => {
    const owner = await makeAccount();
    const app = await appWithHistory(owner);
    const config = await conforming(`/apps/${app.name}/config-vars`, { token: owner.token, status: 200 });
    expect(Object.keys(config.body).sort()).toEqual(["DATABASE_URL", "EMPTY"]);
    const fresh = await makeApp(owner);
    await conforming(`/apps/${fresh.name}/config-vars`, { token: owner.token, status: 200 });
  });

  it("GET /apps/{app}/releases, one release, its config, and a rollback", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await deploySlug(owner.token, app.name, {});
    await conforming(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: "hello world" }, status: 200 });
    await conforming(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: null }, status: 200 });
    const list = await conforming(`/apps/${app.name}/releases`, { token: owner.token, status: 200 });
    expect(list.body.map((r: any) => r.version)).toEqual([1, 2, 3, 4]);
    await conforming(`/apps/${app.name}/releases/2`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/releases/${list.body[0].id}`, { token: owner.token, status: 200 });
    const v3config = await conforming(`/apps/${app.name}/releases/3/config-vars`, { token: owner.token, status: 200 });
    expect(v3config.body.GREETING).toBe("hello world");
    await conforming(`/apps/${app.name}/releases/1/config-vars`, { token: owner.token, status: 200 });
    const rollback = await conforming(`/apps/${app.name}/releases`, { method: "POST", token: owner.token, body: { release: "3" }, status: 201 });
    expect(rollback.body).toMatchObject({ version: 5, current: true });
    await conforming(`/apps/${app.name}/releases`, { token: owner.token, status: 200 });
  });

  it("POST and GET /apps/{app}/slugs, then the formation and dynos of a deploy", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const slug = await conforming(`/apps/${app.name}/slugs`, {
      method: "POST",
      token: owner.token,
      body: {
        process_types: { web: "node server.js", worker: "node worker.js" },
        commit: "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
        commit_description: "first deploy",
        stack: "heroku-24",
      },
      status: 201,
    });
    const upload = await fetch(slug.body.blob.url, { method: "PUT", body: slugArchive(), dispatcher: tlsAgent() });
    expect(upload.status, await upload.text()).toBe(200);
    // Heroku answers with a download URL; dynoplane serves slugs to its hosts only, so `url` is null.
    const info = await conforming(`/apps/${app.name}/slugs/${slug.body.id}`, { token: owner.token, status: 200, deviations: ["/blob/url"] });
    expect(info.body.blob).toEqual({ method: "get", url: null });
    await conforming(`/apps/${app.name}/releases`, { method: "POST", token: owner.token, body: { slug: slug.body.id }, status: 201 });

    const formation = await conforming(`/apps/${app.name}/formation`, { token: owner.token, status: 200 });
    expect(formation.body.map((f: any) => f.type).sort()).toEqual(["web", "worker"]);
    await conforming(`/apps/${app.name}/formation/web`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/formation/worker`, { method: "PATCH", token: owner.token, body: { quantity: 1, size: "Eco" }, status: 200 });

    const dynoList = await conforming(`/apps/${app.name}/dynos`, { token: owner.token, status: 200 });
    const dyno = dynoList.body[0].name;
    await conforming(`/apps/${app.name}/dynos/${dyno}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/dynos/${dyno}`, { method: "DELETE", token: owner.token, status: 202 });
    await conforming(`/apps/${app.name}/formations/web`, { method: "DELETE", token: owner.token, status: 202 });
    await conforming(`/apps/${app.name}/dynos`, { method: "DELETE", token: owner.token, status: 202 });
    await conforming(`/apps/${app.name}/dynos/${dyno}/actions/stop`, { method: "POST", token: owner.token, status: 202 });
    await conforming(`/apps/${app.name}/formations/web/actions/stop`, { method: "POST", token: owner.token, status: 202 });
    await conforming(`/apps/${app.name}/dynos`, { method: "POST", token: owner.token, body: { command: "sleep 5", attach: false }, status: 201 });
    const scaledDown = await conforming(`/apps/${app.name}/formation`, {
      method: "PATCH",
      token: owner.token,
      body: {
        updates: [
          { type: "web", quantity: "0" },
          { type: "worker", quantity: 0 },
        ],
      },
      status: 200,
    });
    expect(scaledDown.body.map((f: any) => f.quantity)).toEqual([0, 0]);
  });

  it("POST /apps/{app}/log-sessions and the log-drains of an app", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await conforming(`/apps/${app.name}/log-sessions`, {
      method: "POST",
      token: owner.token,
      body: { lines: 10, tail: true, dyno: "web", source: "app" },
      status: 201,
    });
    const url = "https://logs.example.com/drain";
    const drain = await conforming(`/apps/${app.name}/log-drains`, { method: "POST", token: owner.token, body: { url }, status: 201 });
    await conforming(`/apps/${app.name}/log-drains`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/log-drains/${drain.body.id}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/log-drains/${encodeURIComponent(url)}`, { method: "DELETE", token: owner.token, status: 200 });
  });

  it("POST /sources, the Build API and buildpack installations", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const created = await conforming("/sources", { method: "POST", token: owner.token, status: 201 });
    expect((await putBlob(created.body.source_blob.put_url, tarball({ Procfile: "web: python3 -m http.server $PORT\n" }))).status).toBe(200);
    await conforming(`/apps/${app.name}/buildpack-installations`, {
      method: "PUT",
      token: owner.token,
      body: { updates: [{ buildpack: "heroku/procfile" }] },
      status: 200,
    });
    await conforming(`/apps/${app.name}/buildpack-installations`, { token: owner.token, status: 200 });
    const build = await conforming(`/apps/${app.name}/builds`, {
      method: "POST",
      token: owner.token,
      body: { source_blob: { url: created.body.source_blob.get_url } },
      status: 201,
    });
    await conforming(`/apps/${app.name}/builds`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/builds/${build.body.id}`, { token: owner.token, status: 200 });
  });

  it("regions and stacks, by name and by id", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    // A region's provider is dynoplane with its own region names, not one of AWS's.
    const regions = await conforming("/regions", { token: owner.token, status: 200, deviations: ["/0/provider/region", "/1/provider/region"] });
    await conforming(`/regions/${regions.body[1].name}`, { token: owner.token, status: 200, deviations: ["/provider/region"] });
    await conforming(`/regions/${regions.body[0].id}`, { token: owner.token, status: 200, deviations: ["/provider/region"] });
    const stacks = await conforming("/stacks", { token: owner.token, status: 200 });
    await conforming(`/stacks/${stacks.body[0].id}`, { token: owner.token, status: 200 });
    await conforming(`/stacks/${stacks.body[1].name}`, { token: owner.token, status: 200 });
    await conforming(`/apps/${app.name}/available-stacks`, { token: owner.token, status: 200 });
  });

  it("the add-on catalog, add-ons and their attachments", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const other = await makeApp(owner);
    try {
      const services = await conforming("/addon-services", { token: owner.token, status: 200 });
      const service = services.body[0];
      await conforming(`/addon-services/${service.name}`, { token: owner.token, status: 200 });
      const plans = await conforming(`/addon-services/${service.id}/plans`, { token: owner.token, status: 200 });
      await conforming(`/addon-services/${service.name}/plans/essential-1`, { token: owner.token, status: 200 });
      await conforming(`/plans/${plans.body[0].id}`, { token: owner.token, status: 200 });
      const created = await conforming(`/apps/${app.name}/addons`, {
        method: "POST",
        token: owner.token,
        body: { plan: { name: "heroku-postgresql:essential-0" }, attachment: {}, config: {} },
        status: 201,
      });
      const name = created.body.name as string;
      const deadline = Date.now() + 20_000;
      while ((await api(`/addons/${name}`, { token: owner.token })).body.state !== "provisioned" && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      await conforming(`/apps/${app.name}/addons`, { token: owner.token, status: 200 });
      await conforming(`/apps/${app.name}/addons/${name}`, { token: owner.token, status: 200 });
      await conforming("/addons", { token: owner.token, status: 200 });
      await conforming(`/addons/${created.body.id}`, { token: owner.token, status: 200 });
      await conforming(`/apps/${app.name}/addons/${name}`, {
        method: "PATCH",
        token: owner.token,
        body: { plan: { name: "heroku-postgresql:essential-1" } },
        status: 200,
      });
      await conforming("/actions/addons/resolve", { method: "POST", token: owner.token, body: { addon: name, app: app.name }, status: 200 });
      const attached = await conforming("/addon-attachments", {
        method: "POST",
        token: owner.token,
        body: { addon: name, app: other.name, name: "SHARED" },
        status: 201,
      });
      await conforming("/addon-attachments", { token: owner.token, status: 200 });
      await conforming(`/addon-attachments/${attached.body.id}`, { token: owner.token, status: 200 });
      await conforming(`/apps/${other.name}/addon-attachments`, { token: owner.token, status: 200 });
      await conforming(`/apps/${other.name}/addon-attachments/SHARED`, { token: owner.token, status: 200 });
      await conforming(`/addons/${name}/addon-attachments`, { token: owner.token, status: 200 });
      await conforming("/actions/addon-attachments/resolve", {
        method: "POST",
        token: owner.token,
        body: { addon_attachment: "DATABASE_URL", app: app.name },
        status: 200,
      });
      await conforming(`/addon-attachments/${attached.body.id}`, { method: "DELETE", token: owner.token, status: 200 });
      await conforming(`/apps/${app.id}/addons/${created.body.id}`, { method: "DELETE", token: owner.token, status: 200 });
    } finally {
      await api(`/apps/${app.name}`, { method: "DELETE", token: owner.token });
      await api(`/apps/${other.name}`, { method: "DELETE", token: owner.token });
    }
  });

  it("every mounted route has a link in the schema, and every route that can answer 2xx was validated", () => {
    const routes = mountedRoutes();
    const toPath = (route: string) => route.split(" ")[1]!.replace(/:\w+/g, "x");
    const unlinked = routes.filter((r) => !schema.linkFor(r.split(" ")[0]!, toPath(r)));
    expect(unlinked).toEqual([]);
    const supplemented = routes.filter((r) => schema.linkFor(r.split(" ")[0]!, toPath(r))!.supplement);
    expect(supplemented).toEqual([
      "DELETE /oauth/sessions/:id",
      "GET /account/actions/get-quota",
      "GET /accounts/:account/actions/get-quota",
      "GET /apps/:app/metrics",
      "GET /oauth/sessions",
    ]);
    // An app is never in a pipeline here, so its coupling is always 404.
    // dynoplane has no account features (labs asks for one before the app's).
    const neverSuccessful = ["GET /apps/:app/pipeline-couplings", "GET /account/features/:feature"];
    expect(routes.filter((r) => !validated.has(r) && !neverSuccessful.includes(r))).toEqual([]);
  });
});

describe("the schema validators reject what Heroku's schema rejects", () => {
  const sample = async () => {
    const owner = await makeAccount();
    const app = await appWithHistory(owner);
    const appBody = (await api(`/apps/${app.name}`, { token: owner.token })).body;
    const release = (await api(`/apps/${app.name}/releases/3`, { token: owner.token })).body;
    return { appBody, release };
  };
  const appErrors = (body: unknown) => schema.validateResponse("GET", "/apps/x", body);
  const releaseErrors = (body: unknown) => schema.validateResponse("GET", "/apps/x/releases/1", body);
  const configErrors = (body: unknown) => schema.validateResponse("GET", "/apps/x/config-vars", body);

  it("requires every property a strictProperties object lists, and allows extra ones", async () => {
    const { appBody, release } = await sample();
    expect(appErrors(appBody)).toEqual([]);
    const { web_url: _w, ...withoutWebUrl } = appBody;
    expect(appErrors(withoutWebUrl).join("\n")).toContain("web_url");
    const { email: _e, ...ownerWithoutEmail } = appBody.owner;
    expect(appErrors({ ...appBody, owner: ownerWithoutEmail }).join("\n")).toContain("email");
    expect(appErrors({ ...appBody, process_tier: "eco", not_in_schema: 1 })).toEqual([]);
    const { current: _c, ...withoutCurrent } = release;
    expect(releaseErrors(withoutCurrent).join("\n")).toContain("current");
    expect(releaseErrors({ ...release, status: "done" })).not.toEqual([]);
  });

  it("checks date-time, uuid, email and uri formats", async () => {
    const { appBody } = await sample();
    expect(appErrors({ ...appBody, created_at: "2024-01-01 00:00:00" }).join("\n")).toContain("date-time");
    expect(appErrors({ ...appBody, created_at: "2024-02-30T00:00:00Z" }).join("\n")).toContain("date-time");
    expect(appErrors({ ...appBody, created_at: "2024-02-29T23:59:59Z" })).toEqual([]);
    expect(appErrors({ ...appBody, id: "12345" }).join("\n")).toContain("uuid");
    expect(appErrors({ ...appBody, owner: { ...appBody.owner, email: "nobody" } }).join("\n")).toContain("email");
    expect(appErrors({ ...appBody, web_url: "not a url" })).not.toEqual([]);
  });

  it("holds app URLs to dynoplane's shapes", async () => {
    const { appBody } = await sample();
    expect(appErrors({ ...appBody, git_url: `git@localhost:${appBody.name}.git` }).join("\n")).toContain("git_url");
    expect(appErrors({ ...appBody, git_url: appBody.git_url.replace(/\.git$/, "") }).join("\n")).toContain("git_url");
    expect(appErrors({ ...appBody, web_url: appBody.web_url.replace(/\/$/, "") }).join("\n")).toContain("web_url");
    expect(appErrors({ ...appBody, web_url: appBody.web_url.replace("https:", "ftp:") }).join("\n")).toContain("web_url");
  });

  it("holds config vars to string values under word keys", () => {
    expect(configErrors({ A_1: "x", B: "" })).toEqual([]);
    expect(configErrors({ "A-B": "x" })).not.toEqual([]);
    expect(configErrors({ A: 1 })).not.toEqual([]);
    expect(configErrors(["A"])).not.toEqual([]);
  });
});
