import { and, eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { addonAttachments, addons } from "../../src/db/schema/index.ts";
import { api } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { readSse, logSessionUrl } from "../support/log-app.ts";
import { destroyApp, waitFor } from "../support/slugs.ts";
import { asTenant, configOf, provisionDatabase } from "./support.ts";

afterAll(closeDb);

async function addCollaborator(owner: TestAccount, app: string, who: TestAccount) {
  const res = await api(`/apps/${app}/collaborators`, { method: "POST", token: owner.token, body: { user: who.email } });
  expect(res.status, res.text).toBe(201);
}

const removeCollaborator = async (owner: TestAccount, app: string, who: TestAccount) =>
  expect((await api(`/apps/${app}/collaborators/${who.email}`, { method: "DELETE", token: owner.token })).status).toBe(200);

describe("a collaborator against the owner's add-ons", () => {
  it("cannot take the owner's database to an app of its own, nor create, resize or destroy it", async () => {
    const owner = await makeAccount();
    const collaborator = await makeAccount();
    const app = await makeApp(owner);
    const theirs = await makeApp(collaborator);
    try {
      const { addon, url } = await provisionDatabase(owner, app.name);
      await addCollaborator(owner, app.name, collaborator);
      // Defence: attachAddon takes the add-on's owner; an attachment carries its credentials.
      const attach = await api("/addon-attachments", { method: "POST", token: collaborator.token, body: { addon: addon.name, app: theirs.name } });
      expect(attach.status, attach.text).toBe(403);
      expect(attach.body).toMatchObject({ id: "forbidden", message: expect.stringMatching(/Only the owner of .* can attach it to another app/) });
      expect(await configOf(collaborator.token, theirs.name)).toEqual({});
      // Defence: the paid add-on rule of personal apps (findAppForActor's ownerOnly).
      const calls: Array<[string, string, Record<string, unknown>?]> = [
        ["DELETE", `/apps/${app.name}/addons/${addon.name}`],
        ["PATCH", `/apps/${app.name}/addons/${addon.name}`, { plan: "heroku-postgresql:essential-1" }],
        ["POST", `/apps/${app.name}/addons`, { plan: "heroku-postgresql:essential-0" }],
      ];
      for (const [method, path, body] of calls) {
        const res = await api(path, { method, token: collaborator.token, body });
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
        expect(res.body.message).toMatch(/^Only the owner of .* can add, remove or change the plan of its heroku-postgresql add-ons/);
      }
      expect(await (await db()).select({ plan: addons.plan }).from(addons).where(eq(addons.appId, app.id))).toEqual([
        { plan: "heroku-postgresql:essential-0" },
      ]);
      expect((await asTenant(url, "select 1 as one"))[0]!.rows).toEqual([{ one: 1 }]);
      // What a collaborator may still do with it: read it, as the app's config holds it.
      expect((await api(`/apps/${app.name}/addons/${addon.name}`, { token: collaborator.token })).status).toBe(200);
    } finally {
      await destroyApp(owner.token, app.name);
      await destroyApp(collaborator.token, theirs.name);
    }
  });

  it("keeps no attachment of the owner's database once removed, and the owner sees and removes any attachment of it", async () => {
    const owner = await makeAccount();
    const collaborator = await makeAccount();
    const app = await makeApp(owner);
    const theirs = await makeApp(collaborator);
    const kept = await makeApp(collaborator);
    try {
      const { addon } = await provisionDatabase(owner, app.name);
      await addCollaborator(owner, app.name, collaborator);
      // Attachments made to the collaborator's apps while it could (as an earlier release let it).
      const handle = await db();
      const [made] = await handle.insert(addonAttachments).values({ addonId: addon.id, appId: theirs.id, name: "STOLEN" }).returning();
      const [other] = await handle.insert(addonAttachments).values({ addonId: addon.id, appId: kept.id, name: "ALSO" }).returning();
      // Defence: detachAddon lets an add-on's owner remove any attachment of it, wherever it is.
      const listed = await api(`/addons/${addon.id}/addon-attachments`, { token: owner.token });
      expect(listed.body.map((a: { app: { name: string } }) => a.app.name).sort()).toEqual([app.name, kept.name, theirs.name].sort());
      const detached = await api(`/addon-attachments/${other!.id}`, { method: "DELETE", token: owner.token });
      expect(detached.status, detached.text).toBe(200);
      // Defence: removeCollaborator detaches the owner's add-ons from the apps of theirs the owner cannot reach.
      await removeCollaborator(owner, app.name, collaborator);
      const left = await handle
        .select()
        .from(addonAttachments)
        .where(and(eq(addonAttachments.addonId, addon.id), eq(addonAttachments.appId, theirs.id)));
      expect(left).toEqual([]);
      expect(made).toBeDefined();
      const rotated = await api(`/postgres/v0/databases/${addon.id}/credentials_rotation`, { method: "POST", token: owner.token, body: {} });
      expect(rotated.status, rotated.text).toBe(200);
      const config = await configOf(collaborator.token, theirs.name);
      expect(Object.keys(config).filter((k) => k.startsWith("STOLEN"))).toEqual([]);
      expect(Object.values(config)).not.toContain((await configOf(owner.token, app.name)).DATABASE_URL);
    } finally {
      await destroyApp(owner.token, app.name);
      await destroyApp(collaborator.token, theirs.name);
      await destroyApp(collaborator.token, kept.name);
    }
  });

  it("loses its live log tail when removed, and cannot open it again", async () => {
    const owner = await makeAccount();
    const collaborator = await makeAccount();
    const app = await makeApp(owner);
    try {
      await addCollaborator(owner, app.name, collaborator);
      const url = await logSessionUrl(collaborator.token, app.name, { tail: true, lines: 1 });
      const tail = await readSse(url);
      expect(tail.status).toBe(200);
      await removeCollaborator(owner, app.name, collaborator);
      // Defence: LogChannel.endStreamsOf for the removed account; the URL's account must still reach the app.
      const ended = await Promise.race([tail.ended.then(() => "ended"), new Promise((r) => setTimeout(() => r("still open"), 10_000))]);
      expect(ended).toBe("ended");
      const again = await readSse(url);
      expect(again.status).toBe(403);
      again.abort();
      // The owner's own tail is untouched by it.
      const mine = await readSse(await logSessionUrl(owner.token, app.name, { tail: true, lines: 1 }));
      expect(mine.status).toBe(200);
      await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { AFTER: "1" } });
      await waitFor("the owner's tail to go on", async () => mine.events.some((e) => e.data.includes("Set AFTER config vars")), 10_000, 100);
      mine.abort();
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});
