import { eq } from "drizzle-orm";
import { Hono } from "hono";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgDatabase, type Database } from "../../src/db/client.ts";
import { apps, oauthAuthorizations } from "../../src/db/schema/index.ts";
import { authenticateForApp, findAppForActor } from "../../src/services/apps/apps.ts";
import type { AppEnv } from "../../src/env.ts";
import { ApiError } from "../../src/errors.ts";
import { authenticate } from "../../src/middleware/authenticate.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";

/**
 * The token and the app a request names are read in one query, and the route's own lookup
 * uses that read once: counted on a real connection to the platform's database, with the
 * answers the lookup gives on its own.
 */
let client: pg.Client;
let db: Database;
let queries = 0;
let owner: TestAccount;
let collaborator: TestAccount;
let stranger: TestAccount;
let app: { id: string; name: string };

beforeAll(async () => {
  client = new pg.Client({ connectionString: platform().databaseUrl });
  await client.connect();
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    queries++;
    return query(...args);
  };
  db = pgDatabase(client);
  [owner, collaborator, stranger] = await Promise.all([makeAccount(), makeAccount(), makeAccount()]);
  app = await makeApp(owner);
  const added = await api(`/apps/${app.name}/collaborators`, { method: "POST", token: owner.token, body: { user: collaborator.email } });
  expect(added.status, added.text).toBe(201);
});

afterAll(async () => {
  await client?.end();
  await closeDb();
});

/** Runs `fn` and says how many queries it sent. */
async function counted<T>(fn: () => Promise<T>): Promise<{ value: T; queries: number }> {
  const before = queries;
  const value = await fn();
  return { value, queries: queries - before };
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (err: unknown) => (err instanceof ApiError ? { status: err.status, id: err.id, message: err.message } : { thrown: String(err) }),
  );

describe("authenticating with the app a request names", () => {
  it("answers the owner's lookup by name and by id from the token's own query", async () => {
    for (const ident of [app.name, app.id, app.name.toUpperCase()]) {
      const { value, queries: n } = await counted(async () => {
        const actor = await authenticateForApp(db, owner.token, ident);
        return findAppForActor(db, actor!, ident);
      });
      expect(n, ident).toBe(1);
      expect(value).toMatchObject({ id: app.id, name: app.name, role: "owner", ownerEmail: owner.email });
    }
  });

  it("gives a collaborator the collaborator's role, and refuses what only the owner may do", async () => {
    const actor = await authenticateForApp(db, collaborator.token, app.name);
    expect(actor).toMatchObject({ accountId: collaborator.id, email: collaborator.email });
    const { value, queries: n } = await counted(() => findAppForActor(db, actor!, app.name));
    expect(n).toBe(0);
    expect(value).toMatchObject({ id: app.id, role: "collaborator", ownerEmail: owner.email });
    const again = await authenticateForApp(db, collaborator.token, app.name);
    expect(await refusal(findAppForActor(db, again!, app.name, "delete it"))).toEqual({
      status: 403,
      id: "forbidden",
      message: `Only the owner of ${app.name} (${owner.email}) can delete it.`,
    });
  });

  it("refuses a stranger (403) and says not found for an app that does not exist, after one query", async () => {
    const { value, queries: n } = await counted(async () => {
      const actor = await authenticateForApp(db, stranger.token, app.name);
      return refusal(findAppForActor(db, actor!, app.name));
    });
    expect(n).toBe(1);
    expect(value).toMatchObject({ status: 403, id: "forbidden" });
    const missing = appName("missing");
    const gone = await counted(async () => {
      const actor = await authenticateForApp(db, owner.token, missing);
      return refusal(findAppForActor(db, actor!, missing));
    });
    expect(gone.queries).toBe(1);
    expect(gone.value).toMatchObject({ status: 404, id: "not_found" });
  });

  it("knows no one for a revoked, expired, unknown or malformed token, whichever app is named", async () => {
    const revoked = await makeAccount();
    await db.update(oauthAuthorizations).set({ revokedAt: new Date() }).where(eq(oauthAuthorizations.accountId, revoked.id));
    const expired = await makeAccount();
    await db
      .update(oauthAuthorizations)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(oauthAuthorizations.accountId, expired.id));
    const unknown = `dpl_${"A".repeat(43)}`;
    for (const token of [revoked.token, expired.token, unknown]) {
      for (const ident of [app.name, app.id, appName("missing")]) expect(await authenticateForApp(db, token, ident), `${token} ${ident}`).toBeNull();
    }
  });

  it("uses the early read once: a later lookup in the same request reads afresh", async () => {
    const actor = await authenticateForApp(db, owner.token, app.name);
    expect((await findAppForActor(db, actor!, app.name)).maintenance).toBe(false);
    await db.update(apps).set({ maintenance: true }).where(eq(apps.id, app.id));
    try {
      const { value, queries: n } = await counted(() => findAppForActor(db, actor!, app.name));
      expect(n).toBe(1);
      expect(value.maintenance).toBe(true);
    } finally {
      await db.update(apps).set({ maintenance: false }).where(eq(apps.id, app.id));
    }
  });

  it("does not let the read for one app answer a lookup of another, or another request's", async () => {
    const other = await makeApp(stranger);
    const actor = await authenticateForApp(db, owner.token, app.name);
    // Another request of the same account, on the stranger's app.
    const theirs = await authenticateForApp(db, owner.token, other.name);
    expect(await refusal(findAppForActor(db, theirs!, other.name))).toMatchObject({ status: 403, id: "forbidden" });
    expect(await refusal(findAppForActor(db, actor!, other.name))).toMatchObject({ status: 403, id: "forbidden" });
    const own = await counted(() => findAppForActor(db, actor!, app.name));
    expect(own.queries).toBe(0);
    expect(own.value.id).toBe(app.id);
  });
});

describe("the authentication middleware on an app's path", () => {
  /** The API's authentication in front of a route that does what app routes do first. */
  function appRoute() {
    const router = new Hono<AppEnv>();
    router.onError((err, c) => (err instanceof ApiError ? c.json({ id: err.id }, err.status) : c.json({ thrown: String(err) }, 500)));
    router.use(async (c, next) => {
      c.set("db", db);
      await next();
    });
    router.use(authenticate);
    router.get("/apps/:app/releases", async (c) => {
      const before = queries;
      const found = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
      return c.json({ id: found.id, role: found.role, routeQueries: queries - before });
    });
    return router;
  }

  it("hands the route the app it read with the token, however the path spells the name", async () => {
    // "%61" is "a": the middleware and the route's parameter decode the same segment.
    const spellings = [app.name, app.id, app.name.toUpperCase(), `%${app.name.charCodeAt(0).toString(16)}${app.name.slice(1)}`];
    for (const spelling of spellings) {
      const { value: res, queries: n } = await counted(async () =>
        appRoute().request(`/apps/${spelling}/releases`, { headers: { Authorization: `Bearer ${collaborator.token}` } }),
      );
      expect(await res.json(), spelling).toEqual({ id: app.id, role: "collaborator", routeQueries: 0 });
      expect(n, spelling).toBe(1);
    }
  });

  it("refuses a bad token (401) before anything of the app, and a stranger (403)", async () => {
    const bad = await appRoute().request(`/apps/${app.name}/releases`, { headers: { Authorization: `Bearer dpl_${"C".repeat(43)}` } });
    expect([bad.status, await bad.json()]).toEqual([401, { id: "unauthorized" }]);
    const theirs = await appRoute().request(`/apps/${app.name}/releases`, { headers: { Authorization: `Bearer ${stranger.token}` } });
    expect([theirs.status, await theirs.json()]).toEqual([403, { id: "forbidden" }]);
    const none = await appRoute().request(`/apps/${app.name}/releases`);
    expect(none.status).toBe(401);
  });
});

describe("the API on an app's paths", () => {
  it("answers as before for the owner, a collaborator, a stranger, a bad token and a missing app", async () => {
    expect((await api(`/apps/${app.name}`, { token: owner.token })).body).toMatchObject({ id: app.id, owner: { email: owner.email } });
    expect((await api(`/apps/${app.id}/config-vars`, { token: collaborator.token })).status).toBe(200);
    const refused = await api(`/apps/${app.name}/config-vars`, { token: stranger.token });
    expect([refused.status, refused.body.id]).toEqual([403, "forbidden"]);
    const unauth = await api(`/apps/${app.name}`, { token: `dpl_${"B".repeat(43)}` });
    expect([unauth.status, unauth.body.id]).toEqual([401, "unauthorized"]);
    const missing = await api(`/apps/${appName("missing")}/releases`, { token: owner.token });
    expect([missing.status, missing.body.id]).toEqual([404, "not_found"]);
    const encoded = await api(`/apps/%E0%A4%A`, { token: owner.token });
    expect([encoded.status, encoded.body.id]).toEqual([404, "not_found"]);
  });
});
