import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp } from "../support/factories.ts";
import { deploySlug, destroyApp } from "../support/slugs.ts";

// Attack: a rollback to a release from before the first deploy, which names no slug, so
// that the app's dynos start with nothing (or a slug the platform would have to guess).
// Defence: rollback refuses a target without a slug (src/services/apps/releases.ts).

afterAll(closeDb);

describe("a rollback to a slugless release", () => {
  it("is refused, and changes nothing", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    try {
      for (const step of ["2", "3"])
        expect((await api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: { STEP: step } })).status).toBe(200);
      await deploySlug(owner.token, app, {});
      const list = async () =>
        (await api(`/apps/${app}/releases`, { token: owner.token })).body as Array<{ id: string; version: number; eligible_for_rollback: boolean }>;
      const config = async () => (await api(`/apps/${app}/config-vars`, { token: owner.token })).body;
      const before = await list();
      expect(before.map((r) => r.eligible_for_rollback)).toEqual([false, false, false, true]);
      const beforeConfig = await config();
      for (const target of before.filter((r) => r.version < 4)) {
        const res = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body: { release: target.id } });
        expect(res.status).toBe(422);
        expect(res.body).toEqual({
          id: "invalid_params",
          message: `Release v${target.version} has no slug (nothing had been deployed yet) and cannot be rolled back to.`,
        });
      }
      expect(await list()).toEqual(before);
      expect(await config()).toEqual(beforeConfig);
    } finally {
      await destroyApp(owner.token, app);
    }
  });
});
