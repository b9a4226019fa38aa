import { eq, sql } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { dynos, hosts } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { deploySlug, destroyApp, waitFor, waitForAnswer } from "../support/slugs.ts";

afterAll(closeDb);

/** Reports as a host agent would: the control plane's side of the protocol is what is under test. */
async function heartbeat(secret: string, url: string, capacityMb: number) {
  const res = await api("/internal/hosts/heartbeat", {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}` },
    body: { url, capacity_mb: capacityMb, dynos: [], dropped_log_lines: 0 },
  });
  expect(res.status).toBe(200);
  return res.body as { host_id: string; desired: Array<{ id: string; instance: string }> };
}

describe("a host that stops heart-beating", () => {
  it("is marked down and its dynos move to a live host, where they answer again", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner, appName("moved"));
    const unique = Date.now().toString(36);
    const lost = await createHost(await db(), `lost-${unique}`);
    const witness = await createHost(await db(), `witness-${unique}`);
    try {
      await deploySlug(owner.token, app.name);
      await waitForAnswer(app.name);

      // The app's dyno is placed on a host that then goes silent.
      await heartbeat(lost.secret, "http://127.0.0.1:9", 4096);
      await (await db()).update(dynos).set({ hostId: lost.host.id }).where(eq(dynos.appId, app.id));
      const [before] = await (await db()).select().from(dynos).where(eq(dynos.appId, app.id));
      const desired = await heartbeat(lost.secret, "http://127.0.0.1:9", 4096);
      expect(desired.desired.map((d) => d.id)).toEqual([before!.id]);
      await (await db()).update(hosts).set({ lastHeartbeatAt: sql`now() - interval '5 minutes'` }).where(eq(hosts.id, lost.host.id));

      // A new host's heartbeat wakes the fleet watch at once: the silent host is retired.
      await heartbeat(witness.secret, "http://127.0.0.1:9", 0);
      await waitFor(
        "the silent host marked down",
        async () => {
          const [lostRow] = await (await db()).select().from(hosts).where(eq(hosts.id, lost.host.id));
          return lostRow!.state === "down";
        },
        15_000,
        100,
      );
      const [after] = await (await db()).select().from(dynos).where(eq(dynos.appId, app.id));
      expect(after!.id).toBe(before!.id);
      expect(after!.hostId).not.toBe(lost.host.id);
      // A host with no free memory receives nothing.
      expect(after!.hostId).not.toBe(witness.host.id);
      expect(after!.instance).not.toBe(before!.instance);

      // The platform's own agent picks the dyno up and the app answers again.
      await waitFor("the moved dyno to be up", async () => {
        const [row] = await (await db()).select().from(dynos).where(eq(dynos.appId, app.id));
        return row?.state === "up" && row.hostId === platform().hostId ? row : undefined;
      });
      await waitForAnswer(app.name);
    } finally {
      await destroyApp(owner.token, app.name);
      await (await db()).delete(hosts).where(eq(hosts.id, lost.host.id));
      await (await db()).delete(hosts).where(eq(hosts.id, witness.host.id));
    }
  });
});
