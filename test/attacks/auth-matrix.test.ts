import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { looksLikeToken } from "../../src/auth/tokens.ts";
import { oauthAuthorizations } from "../../src/db/schema/index.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { mountedRoutes, routeOf } from "../support/mounted-routes.ts";

// Attacks on every route the API mounts: no token, a malformed, expired, revoked or foreign
// one, another account's app, authorization or id, and a collaborator where only the owner
// may act. Defence: authentication and the one owner-scoped lookup (findAppForActor,
// src/services/apps/apps.ts), which every app route goes through.

afterAll(closeDb);

/**
 * Everything a request could disturb: an owner with an app (config set and changed,
 * so three releases) and spare, expired and revoked tokens; another account with an
 * app of its own.
 */
interface World {
  owner: TestAccount;
  other: TestAccount;
  /** Let into the owner's app: may work on it, but not do what only its owner may. */
  collaborator: TestAccount;
  /** A webhook of the owner's app. */
  webhook: string;
  app: { id: string; name: string };
  /** A live token of the owner's, the target of the authorization routes. */
  spare: { id: string; token: string };
  expired: { id: string; token: string };
  revoked: { id: string; token: string };
  /** A free name that creating or renaming an app would take. */
  newAppName: string;
}

async function issue(owner: TestAccount, body: Record<string, unknown>) {
  const res = await api("/oauth/authorizations", { method: "POST", token: owner.token, body });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.id as string, token: res.body.access_token.token as string };
}

async function makeWorld(): Promise<World> {
  const owner = await makeAccount();
  const other = await makeAccount();
  const collaborator = await makeAccount();
  const app = await makeApp(owner);
  await makeApp(other);
  expect((await api(`/apps/${app.name}/collaborators`, { method: "POST", token: owner.token, body: { user: collaborator.email } })).status).toBe(201);
  expect((await api(`/apps/${app.name}/domains`, { method: "POST", token: owner.token, body: { hostname: `www.${app.name}.test` } })).status).toBe(201);
  // Its deliveries would go to the test platform's (allowed, loopback) drain port.
  const hook = await api(`/apps/${app.name}/webhooks`, {
    method: "POST",
    token: owner.token,
    body: { url: `https://127.0.0.1:${platform().idlePort}/hooks`, include: ["api:build"], level: "notify" },
  });
  expect(hook.status).toBe(201);
  for (const body of [{ SECRET: "s3cret", MODE: "a" }, { MODE: "b" }]) {
    expect((await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body })).status).toBe(200);
  }
  const spare = await issue(owner, { description: "spare" });

  // Both tokens work before they are expired or revoked, so a refusal below is about that.
  const expired = await issue(owner, { description: "expiring", expires_in: 3600 });
  expect((await api("/account", { token: expired.token })).status).toBe(200);
  await (await db()).update(oauthAuthorizations).set({ expiresAt: sql`now() - interval '1 minute'` }).where(eq(oauthAuthorizations.id, expired.id));

  const revoked = await issue(owner, { description: "to be revoked" });
  expect((await api("/account", { token: revoked.token })).status).toBe(200);
  expect((await api(`/oauth/authorizations/${revoked.id}`, { method: "DELETE", token: owner.token })).status).toBe(200);

  return { owner, other, collaborator, app, webhook: hook.body.id as string, spare, expired, revoked, newAppName: appName("taken") };
}

/** The rows of every table a request could change, in a stable order. */
async function snapshot(w: World) {
  const ids = sql.join(
    [w.owner.id, w.other.id, w.collaborator.id].map((id) => sql`${id}::uuid`),
    sql`, `,
  );
  const app = sql`${w.app.id}::uuid`;
  // Every table a request could disturb, read in one statement (one round trip per look).
  const rows = (table: string, where: ReturnType<typeof sql>, order: string) =>
    sql`(select coalesce(json_agg(t order by ${sql.raw(order)}), '[]') from ${sql.raw(table)} t where ${where})`;
  const result = await (await db()).execute(sql`select json_build_object(
    'accounts', ${rows("accounts", sql`t.id in (${ids})`, "t.id")},
    'apps', ${rows("apps", sql`t.owner_id in (${ids}) or t.name = ${w.newAppName}`, "t.id")},
    'collaborators', ${rows("collaborators", sql`t.app_id = ${app}`, "t.id")},
    'config_vars', ${rows("config_vars", sql`t.app_id = ${app}`, "t.key")},
    'releases', ${rows("releases", sql`t.app_id = ${app}`, "t.version")},
    'slugs', ${rows("slugs", sql`t.app_id = ${app}`, "t.id")},
    'formations', ${rows("formations", sql`t.app_id = ${app}`, "t.type")},
    'dynos', ${rows("dynos", sql`t.app_id = ${app}`, "t.name")},
    'domains', ${rows("domains", sql`t.app_id = ${app}`, "t.id")},
    'app_webhooks', ${rows("app_webhooks", sql`t.app_id = ${app}`, "t.id")},
    'log_drains', ${rows("log_drains", sql`t.app_id = ${app}`, "t.id")},
    'addons', ${rows("addons", sql`t.app_id = ${app}`, "t.id")},
    'app_features', ${rows("app_features", sql`t.app_id = ${app}`, "t.name")},
    'oauth_authorizations', ${rows("oauth_authorizations", sql`t.account_id in (${ids})`, "t.id")}
  ) as snapshot`);
  return (result as unknown as { rows: [{ snapshot: Snapshot }] }).rows[0].snapshot;
}

/** The rows a request could disturb, by table, as JSON (only the tokens' are looked into). */
interface Snapshot {
  oauth_authorizations: Array<{ id: string; expires_at: string | null; revoked_at: string | null }>;
  [table: string]: unknown;
}

/**
 * Every Platform API route, with a request that would change something if it were let
 * through. `{app}` is the owner's app, `{authorization}` the owner's spare token. The
 * credentials are checked before anything is looked up, so slug, process type and dyno
 * need not exist. `ownerOnly` routes refuse the app's collaborators too.
 */
interface Route {
  method: string;
  path: string;
  body?: (w: World) => unknown;
  ownerOnly?: true;
}
const ROUTES: Route[] = [
  { method: "GET", path: "/account" },
  { method: "GET", path: "/account/actions/get-quota" },
  { method: "GET", path: "/accounts/{email}/actions/get-quota" },
  { method: "POST", path: "/oauth/authorizations", body: () => ({ description: "intruder", expires_in: 3600 }) },
  { method: "GET", path: "/oauth/authorizations" },
  { method: "GET", path: "/oauth/authorizations/{authorization}" },
  { method: "GET", path: "/oauth/authorizations/~" },
  { method: "DELETE", path: "/oauth/authorizations/{authorization}" },
  { method: "POST", path: "/oauth/authorizations/{authorization}/actions/regenerate-tokens" },
  { method: "GET", path: "/oauth/sessions" },
  { method: "DELETE", path: "/oauth/sessions/~" },
  { method: "DELETE", path: "/oauth/sessions/{authorization}" },
  { method: "POST", path: "/apps", body: (w) => ({ name: w.newAppName }) },
  { method: "GET", path: "/apps" },
  { method: "GET", path: "/users/~/apps" },
  { method: "GET", path: "/users/{email}/apps" },
  { method: "GET", path: "/apps/{app}" },
  { method: "PATCH", path: "/apps/{app}", body: (w) => ({ name: w.newAppName, maintenance: true }), ownerOnly: true },
  { method: "DELETE", path: "/apps/{app}", ownerOnly: true },
  { method: "GET", path: "/apps/{app}/collaborators" },
  { method: "GET", path: "/apps/{app}/collaborators/{collaborator}" },
  { method: "POST", path: "/apps/{app}/collaborators", body: (w) => ({ user: w.other.email }), ownerOnly: true },
  { method: "DELETE", path: "/apps/{app}/collaborators/{collaborator}", ownerOnly: true },
  { method: "GET", path: "/apps/{app}/addons" },
  { method: "GET", path: "/apps/{app}/pipeline-couplings" },
  { method: "GET", path: "/apps/{app}/config-vars" },
  { method: "GET", path: "/account/features" },
  { method: "GET", path: "/account/features/{feature}" },
  { method: "GET", path: "/apps/{app}/metrics" },
  { method: "GET", path: "/apps/{app}/features" },
  { method: "GET", path: "/apps/{app}/features/keep-alive" },
  { method: "PATCH", path: "/apps/{app}/features/keep-alive", body: () => ({ enabled: true }) },
  { method: "PATCH", path: "/apps/{app}/config-vars", body: () => ({ SECRET: "stolen", MODE: null, INJECTED: "1" }) },
  { method: "GET", path: "/apps/{app}/releases" },
  { method: "POST", path: "/apps/{app}/releases", body: () => ({ release: "1" }) },
  { method: "GET", path: "/apps/{app}/releases/2" },
  { method: "GET", path: "/apps/{app}/releases/2/config-vars" },
  { method: "POST", path: "/apps/{app}/slugs", body: () => ({ process_types: { web: "node intruder.js" } }) },
  { method: "GET", path: "/apps/{app}/slugs/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "GET", path: "/apps/{app}/formation" },
  { method: "PATCH", path: "/apps/{app}/formation", body: () => ({ updates: [{ type: "web", quantity: 3, size: "Standard-2X" }] }) },
  { method: "GET", path: "/apps/{app}/formation/web" },
  { method: "PATCH", path: "/apps/{app}/formation/web", body: () => ({ quantity: 3 }) },
  { method: "GET", path: "/apps/{app}/dynos" },
  { method: "POST", path: "/apps/{app}/dynos", body: () => ({ command: "cat /app/*", attach: false }) },
  { method: "GET", path: "/apps/{app}/dynos/web.1" },
  { method: "DELETE", path: "/apps/{app}/dynos" },
  { method: "DELETE", path: "/apps/{app}/dynos/web.1" },
  { method: "POST", path: "/apps/{app}/dynos/web.1/actions/stop" },
  { method: "DELETE", path: "/apps/{app}/formations/web" },
  { method: "POST", path: "/apps/{app}/formations/web/actions/stop" },
  { method: "POST", path: "/apps/{app}/log-sessions", body: () => ({ tail: true, lines: 1500 }) },
  { method: "GET", path: "/apps/{app}/log-drains" },
  { method: "POST", path: "/apps/{app}/log-drains", body: () => ({ url: "https://intruder.example.com/drain" }) },
  { method: "GET", path: "/apps/{app}/log-drains/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "DELETE", path: "/apps/{app}/log-drains/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "POST", path: "/apps/{app}/builds", body: () => ({ source_blob: { url: "https://example.com/intruder.tgz" } }) },
  { method: "GET", path: "/apps/{app}/builds" },
  { method: "GET", path: "/apps/{app}/builds/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "POST", path: "/sources" },
  { method: "GET", path: "/apps/{app}/buildpack-installations" },
  { method: "GET", path: "/regions" },
  { method: "GET", path: "/regions/eu" },
  { method: "GET", path: "/stacks" },
  { method: "GET", path: "/stacks/heroku-24" },
  { method: "GET", path: "/apps/{app}/available-stacks" },
  { method: "GET", path: "/apps/{app}/domains" },
  { method: "POST", path: "/apps/{app}/domains", body: () => ({ hostname: "www.intruder.example", sni_endpoint: null }) },
  { method: "GET", path: "/apps/{app}/domains/{domain}" },
  { method: "PATCH", path: "/apps/{app}/domains/{domain}", body: () => ({ sni_endpoint: null }) },
  { method: "DELETE", path: "/apps/{app}/domains/{domain}" },
  { method: "GET", path: "/apps/{app}/sni-endpoints" },
  { method: "GET", path: "/apps/{app}/webhooks" },
  { method: "POST", path: "/apps/{app}/webhooks", body: () => ({ url: "https://hooks.intruder.example/x", include: ["api:release"], level: "notify" }) },
  { method: "GET", path: "/apps/{app}/webhooks/{webhook}" },
  { method: "PATCH", path: "/apps/{app}/webhooks/{webhook}", body: () => ({ url: "https://hooks.intruder.example/y" }) },
  { method: "DELETE", path: "/apps/{app}/webhooks/{webhook}" },
  { method: "GET", path: "/apps/{app}/webhook-events" },
  { method: "GET", path: "/apps/{app}/webhook-events/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "GET", path: "/apps/{app}/webhook-deliveries" },
  { method: "GET", path: "/apps/{app}/webhook-deliveries/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "GET", path: "/addon-services" },
  { method: "GET", path: "/addon-services/heroku-postgresql" },
  { method: "GET", path: "/addon-services/heroku-postgresql/plans" },
  { method: "GET", path: "/addon-services/heroku-postgresql/plans/essential-0" },
  { method: "GET", path: "/plans/4b1c9b6e-2f27-4a8c-8c0e-1f0c5b7a0e01" },
  { method: "POST", path: "/apps/{app}/addons", body: () => ({ plan: { name: "heroku-postgresql:essential-0" } }), ownerOnly: true },
  { method: "GET", path: "/apps/{app}/addons/postgresql-shiny-12345" },
  { method: "PATCH", path: "/apps/{app}/addons/postgresql-shiny-12345", body: () => ({ plan: { name: "heroku-postgresql:essential-2" } }), ownerOnly: true },
  { method: "DELETE", path: "/apps/{app}/addons/postgresql-shiny-12345", ownerOnly: true },
  { method: "GET", path: "/addons" },
  { method: "GET", path: "/addons/postgresql-shiny-12345" },
  { method: "GET", path: "/addons/postgresql-shiny-12345/addon-attachments" },
  { method: "POST", path: "/actions/addons/resolve", body: () => ({ addon: "postgresql-shiny-12345" }) },
  { method: "GET", path: "/addon-attachments" },
  { method: "GET", path: "/addon-attachments/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "POST", path: "/addon-attachments", body: (w) => ({ addon: "postgresql-shiny-12345", app: w.app.name }) },
  { method: "DELETE", path: "/addon-attachments/5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f" },
  { method: "GET", path: "/apps/{app}/addon-attachments" },
  { method: "GET", path: "/apps/{app}/addon-attachments/DATABASE" },
  { method: "POST", path: "/actions/addon-attachments/resolve", body: () => ({ addon_attachment: "DATABASE_URL" }) },
  { method: "PUT", path: "/apps/{app}/buildpack-installations", body: () => ({ updates: [{ buildpack: "/opt/intruder" }] }) },
];

const fill = (path: string, values: { app: string; authorization: string; email: string; collaborator: string; domain: string; webhook: string }) =>
  path
    .replace("{domain}", values.domain)
    .replace("{feature}", "log-runtime-metrics")
    .replace("{webhook}", values.webhook)
    .replace("{app}", values.app)
    .replace("{authorization}", values.authorization)
    .replace("{email}", values.email)
    .replace("{collaborator}", values.collaborator);

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;
const bearer = (token: string) => `Bearer ${token}`;
/** The same token with its last character changed: still token-shaped, but issued to no one. */
const unknownTwin = (token: string) => token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");

const UNAUTHORIZED = { id: "unauthorized", message: "Invalid credentials provided." };
const nonEmpty = expect.stringMatching(/\S/);

interface Case {
  label: string;
  authorization: (w: World) => string | undefined;
  /** Which of the owner's app's identities the path uses. */
  appBy?: "name" | "id";
  status: number;
  body: unknown;
}

/** A request whose credentials are the problem: Heroku's 401. */
const refused = (label: string, authorization: Case["authorization"]): Case => ({ label, authorization, status: 401, body: UNAUTHORIZED });

/** Credentials that must never reach an account. */
const CREDENTIAL_PROBLEMS: Case[] = [
  refused("no Authorization header", () => undefined),
  refused("Bearer undefined, as the logged-out CLI sends", () => "Bearer undefined"),
  refused("an empty Bearer", () => "Bearer "),
  refused("a malformed token (the owner's, cut short)", (w) => bearer(w.owner.token.slice(0, -1))),
  refused("a well-formed but unknown token", (w) => bearer(unknownTwin(w.owner.token))),
  refused("an expired token of the owner's", (w) => bearer(w.expired.token)),
  refused("a revoked token of the owner's", (w) => bearer(w.revoked.token)),
  refused("a revoked token sent as Basic auth", (w) => basic("heroku", w.revoked.token)),
  refused("a valid token under an unknown scheme", (w) => `Token ${w.owner.token}`),
];

/** Basic email:password signs in on POST /oauth/authorizations only; elsewhere a password is not a token. */
const PASSWORD_ELSEWHERE = refused("the owner's email and password as Basic auth", (w) => basic(w.owner.email, w.owner.password));

/** Sign-in attempts that must fail without a trace. */
const BAD_LOGINS: Case[] = [
  refused("a wrong password", (w) => basic(w.owner.email, `${w.owner.password}x`)),
  refused("another account's password", (w) => basic(w.owner.email, w.other.password)),
  refused("an empty password", (w) => basic(w.owner.email, "")),
  refused("an API token in place of the password", (w) => basic(w.owner.email, w.owner.token)),
  refused("an unknown email", (w) => basic(`nobody-${w.app.name}@example.com`, w.owner.password)),
];

/** Another account's valid token on the owner's app: Heroku's 403, with none of the app's details. */
const FOREIGN_APP: Case[] = (["name", "id"] as const).map((appBy) => ({
  label: `another account's valid token, app by ${appBy}`,
  authorization: (w: World) => bearer(w.other.token),
  appBy,
  status: 403,
  body: { id: "forbidden", message: nonEmpty },
}));

/** A collaborator's valid token where only the owner may act: Heroku's 403. */
const COLLABORATOR: Case = {
  label: "a collaborator's valid token",
  authorization: (w) => bearer(w.collaborator.token),
  status: 403,
  body: { id: "forbidden", message: nonEmpty },
};

/** Another account's valid token on the owner's authorization: it does not exist for them. */
const FOREIGN_AUTHORIZATION: Case = {
  label: "another account's valid token",
  authorization: (w) => bearer(w.other.token),
  status: 404,
  body: { id: "not_found", message: nonEmpty, resource: "authorization" },
};

function casesFor(route: Route): Case[] {
  const cases = [...CREDENTIAL_PROBLEMS];
  if (route.method === "POST" && route.path === "/oauth/authorizations") cases.push(...BAD_LOGINS);
  else cases.push(PASSWORD_ELSEWHERE);
  if (route.path.includes("{app}")) cases.push(...FOREIGN_APP);
  if (route.ownerOnly) cases.push(COLLABORATOR);
  if (route.path.includes("{authorization}")) {
    // A session is an authorization too; the refusal names what was asked for.
    const resource = route.path.startsWith("/oauth/sessions/") ? "session" : "authorization";
    cases.push({ ...FOREIGN_AUTHORIZATION, body: { id: "not_found", message: nonEmpty, resource } });
  }
  return cases;
}

describe("the route table", () => {
  it("covers every route the API mounts, and only those", () => {
    const example = {
      app: "some-app",
      authorization: "3f1c2a4e-0000-4000-8000-000000000000",
      email: "someone@example.com",
      collaborator: "helper@example.com",
      domain: "www.example.com",
      webhook: "5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    };
    const covered = new Set(ROUTES.map((r) => routeOf(r.method, fill(r.path, example))));
    expect(covered.has(undefined)).toBe(false);
    expect([...covered].sort()).toEqual(mountedRoutes());
  });

  it("has credential cases that are what they claim", async () => {
    const w = await makeWorld();
    expect(looksLikeToken(w.owner.token)).toBe(true);
    expect(looksLikeToken(w.owner.token.slice(0, -1))).toBe(false);
    expect(looksLikeToken(unknownTwin(w.owner.token))).toBe(true);
    expect(unknownTwin(w.owner.token)).not.toBe(w.owner.token);
    const rows = (await snapshot(w)).oauth_authorizations;
    expect(Date.parse(rows.find((r) => r.id === w.expired.id)?.expires_at ?? "")).toBeLessThan(Date.now());
    expect(Date.parse(rows.find((r) => r.id === w.revoked.id)?.revoked_at ?? "")).toBeLessThan(Date.now());
    // The owner's token and the other account's both work, so their refusals are about scope.
    expect((await api(`/apps/${w.app.name}`, { token: w.owner.token })).status).toBe(200);
    expect((await api(`/oauth/authorizations/${w.spare.id}`, { token: w.owner.token })).status).toBe(200);
    expect((await api("/account", { token: w.other.token })).status).toBe(200);
    // The collaborator reaches the app, so their refusals are about what only the owner may do.
    expect((await api(`/apps/${w.app.name}`, { token: w.collaborator.token })).status).toBe(200);
  });
});

/**
 * The world the routes are tried against, with its snapshot: one for every route while the
 * refusals leave it as it was; a route whose request changed it fails, and the next route
 * gets a fresh one, so one failure does not hide behind another.
 */
let shared: { w: World; before: Snapshot } | null = null;
async function cleanWorld() {
  if (!shared) {
    const w = await makeWorld();
    shared = { w, before: await snapshot(w) };
  }
  return shared;
}

describe.each(ROUTES.map((r) => ({ ...r, label: `${r.method} ${r.path}` })))("$label", (route) => {
  let w: World;
  /** The world as it was made: every refused request must leave it so. */
  let before: Snapshot;
  beforeAll(async () => {
    ({ w, before } = await cleanWorld());
  });

  it.each(casesFor(route).map((c) => [c.label, c] as const))("refuses %s and changes nothing", async (_label, c) => {
    const path = fill(route.path, {
      app: c.appBy === "id" ? w.app.id : w.app.name,
      authorization: w.spare.id,
      email: w.owner.email,
      collaborator: w.collaborator.email,
      domain: `www.${w.app.name}.test`,
      webhook: w.webhook,
    });
    const authorization = c.authorization(w);
    const res = await api(path, {
      method: route.method,
      body: route.body?.(w),
      headers: authorization === undefined ? {} : { Authorization: authorization },
    });
    const after = await snapshot(w);
    if (JSON.stringify(after) !== JSON.stringify(before)) shared = null;
    expect(res.status, res.text).toBe(c.status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body).toEqual(c.body);
    expect(after).toEqual(before);
  });
});
