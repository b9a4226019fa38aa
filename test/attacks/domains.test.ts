import { eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { domains } from "../../src/db/schema/index.ts";
import { api } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { destroyApp } from "../support/slugs.ts";

afterAll(closeDb);

const add = (token: string, app: string, hostname: string) => api(`/apps/${app}/domains`, { method: "POST", token, body: { hostname } });

describe("a tenant claiming names another tenant has", () => {
  it("cannot take a public suffix, a wildcard over another account's domain, or a name under another account's wildcard", async () => {
    const alice = await makeAccount();
    const mallory = await makeAccount();
    const theirs = await makeApp(alice);
    const mine = await makeApp(mallory);
    const own = `${theirs.name}.test`;
    try {
      expect((await add(alice.token, theirs.name, `www.${own}`)).status).toBe(201);
      expect((await add(alice.token, theirs.name, `*.shop.${own}`)).status).toBe(201);
      // Defence: checkOthersNames in addDomain (the Public Suffix List from tldts, and other accounts' names).
      const refused: Array<[string, RegExp]> = [
        ["*.test", /test is a public suffix/],
        ["*.co.uk", /co\.uk is a public suffix/],
        ["*.github.io", /github\.io is a public suffix/],
        ["co.uk", /co\.uk is a public suffix/],
        [`*.${own}`, new RegExp(`would cover (www|\\*\\.shop)\\.${own.replace(/\./g, "\\.")}, which another account's app has added`)],
        [`x.shop.${own}`, /is covered by \*\.shop\..*, which another account's app has added/],
        [`www.${own}`, /already in use by another app/],
      ];
      for (const [hostname, message] of refused) {
        const res = await add(mallory.token, mine.name, hostname);
        expect(res.status, `${hostname}: ${res.text}`).toBe(422);
        expect(res.body).toMatchObject({ id: "invalid_params", message: expect.stringMatching(message) });
      }
      expect(await (await db()).select().from(domains).where(eq(domains.appId, mine.id))).toEqual([]);
      // The owner of the names may still go on under them; others may add names of their own.
      expect((await add(alice.token, theirs.name, `*.${own}`)).status).toBe(201);
      expect((await add(mallory.token, mine.name, `*.${mine.name}.test`)).status).toBe(201);
    } finally {
      await destroyApp(alice.token, theirs.name);
      await destroyApp(mallory.token, mine.name);
    }
  });
});
