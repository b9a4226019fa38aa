import { randomUUID } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { afterAll, describe, expect, it } from "vitest";
import { apps, dynos, formations, hosts, releases } from "../../src/db/schema/index.ts";
import { advanceRollouts, appsRolling } from "../../src/services/dynos/dynos.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import type { DesiredDyno, ObservedDyno } from "../../src/protocol/host.ts";
import { api } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";

// A release rolls through an app's serving dynos a batch at a time (half of them, rounded
// up): the others serve on, on the release before, until the batch is up; each heartbeat
// that brings one up takes the roll further; a batch that crashes stops it there.
// The host here is a heartbeat with no agent behind it, and room for nothing else (its
// capacity is 0, so placement never puts other dynos on it).

afterAll(closeDb);

describe("rolling a release through an app's dynos", () => {
  const hostIds: string[] = [];
  afterAll(async () => {
    for (const id of hostIds) {
      await (await db()).delete(dynos).where(eq(dynos.hostId, id));
      await (await db()).delete(hosts).where(eq(hosts.id, id));
    }
  });

  /** An app with `quantity` web dynos up on a host of its own, on a release with a slug. */
  async function runningApp(quantity: number) {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const conn = await db();
    const { host, secret } = await createHost(conn, `rollout-${randomUUID().slice(0, 8)}`);
    hostIds.push(host.id);
    const [release] = await conn
      .insert(releases)
      .values({ appId: app.id, version: 2, description: "Deploy", userEmail: owner.email, slugId: randomUUID(), config: { GREETING: "v2" } })
      .returning();
    await conn.update(apps).set({ releaseSeq: 2 }).where(eq(apps.id, app.id));
    await conn.insert(formations).values({ appId: app.id, type: "web", quantity, size: "Standard-1X", command: "node server.js" });
    await conn.insert(dynos).values(
      Array.from({ length: quantity }, (_, i) => ({
        appId: app.id,
        releaseId: release!.id,
        name: `web.${i + 1}`,
        type: "web",
        command: "node server.js",
        size: "Standard-1X",
        hostId: host.id,
        state: "up" as const,
        port: 5000 + i,
      })),
    );
    const rows = async () => Object.fromEntries((await conn.select().from(dynos).where(eq(dynos.appId, app.id))).map((d) => [d.name, d]));
    /** A heartbeat reporting `observed`; resolves with the desired set it is answered with. */
    const heartbeat = async (observed: ObservedDyno[]) => {
      const res = await api("/internal/hosts/heartbeat", {
        method: "POST",
        headers: { Authorization: `Bearer ${secret}` },
        body: { url: "http://127.0.0.1:9", capacity_mb: 0, dynos: observed },
      });
      expect(res.status).toBe(200);
      return Object.fromEntries((res.body.desired as DesiredDyno[]).filter((d) => d.app_id === app.id).map((d) => [d.name, d]));
    };
    const report = (d: { id: string; instance: string }, state: ObservedDyno["state"]): ObservedDyno => ({
      id: d.id,
      instance: d.instance,
      state,
      port: state === "up" ? 5000 : null,
      address: null,
      exit_code: state === "crashed" ? 1 : null,
    });
    return { owner, app, release: release!, rows, heartbeat, report };
  }

  it("replaces two of three dynos at first, the third once one of them is up, each serving until then on the release before", async () => {
    const { owner, app, release, rows, heartbeat, report } = await runningApp(3);
    const before = await rows();
    const set = await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: "v3" } });
    expect(set.status, set.text).toBe(200);
    const first = await rows();
    const replaced = Object.values(first).filter((d) => d.releaseId !== release.id);
    expect(replaced).toHaveLength(2);
    expect(replaced.every((d) => d.state === "starting" && d.instance !== before[d.name]!.instance)).toBe(true);
    const waiting = Object.values(first).find((d) => d.releaseId === release.id)!;
    expect(waiting).toMatchObject({ state: "up", instance: before[waiting.name]!.instance });

    // What the host is told to run: the waiting dyno still on v2's config, the batch on v3's.
    const desired = await heartbeat([...replaced.map((d) => report(before[d.name]!, "up")), report(waiting, "up")]);
    expect(desired[waiting.name]).toMatchObject({ instance: waiting.instance, env: expect.objectContaining({ GREETING: "v2" }) });
    for (const d of replaced) expect(desired[d.name]).toMatchObject({ instance: d.instance, env: expect.objectContaining({ GREETING: "v3" }) });
    expect((await rows())[waiting.name]!.instance).toBe(waiting.instance);

    // One of the batch up: the third dyno's turn, in the answer to that very heartbeat.
    const [upFirst, stillBooting] = replaced;
    const next = await heartbeat([report(upFirst!, "up"), report(before[stillBooting!.name]!, "up"), report(waiting, "up")]);
    const rolled = (await rows())[waiting.name]!;
    expect(rolled.releaseId).not.toBe(release.id);
    expect(rolled.instance).not.toBe(waiting.instance);
    expect(next[waiting.name]).toMatchObject({ instance: rolled.instance, env: expect.objectContaining({ GREETING: "v3" }) });
  });

  it("finds a roll no heartbeat took further, as the fleet watch does, and takes it a step on", async () => {
    const { owner, app, release, rows } = await runningApp(3);
    expect((await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: "v3" } })).status).toBe(200);
    const conn = await db();
    expect(await appsRolling(conn)).toContain(app.id);
    // One of the batch came up, and the heartbeat that said so did not get through to the roll.
    const batch = Object.values(await rows()).filter((d) => d.releaseId !== release.id);
    await conn.update(dynos).set({ state: "up" }).where(eq(dynos.id, batch[0]!.id));
    const waiting = Object.values(await rows()).find((d) => d.releaseId === release.id)!;
    // (The platform's own fleet watch may get there first: it calls the same two.)
    await advanceRollouts(conn, await appsRolling(conn));
    expect((await rows())[waiting.name]!.releaseId).not.toBe(release.id);
    // Nothing left on the release before: no roll under way for this app.
    expect(await appsRolling(conn)).not.toContain(app.id);
  });

  it("stops a release whose first batch crashes: the other dyno serves on, on the release before, until the batch is up", async () => {
    const { owner, app, release, rows, heartbeat, report } = await runningApp(2);
    const before = await rows();
    expect((await api(`/apps/${app.name}/config-vars`, { method: "PATCH", token: owner.token, body: { GREETING: "broken" } })).status).toBe(200);
    const first = await rows();
    const replaced = Object.values(first).filter((d) => d.releaseId !== release.id);
    expect(replaced).toHaveLength(1);
    const other = Object.values(first).find((d) => d.releaseId === release.id)!;

    await heartbeat([report(replaced[0]!, "crashed"), report(other, "up")]);
    await heartbeat([report(replaced[0]!, "crashed"), report(other, "up")]);
    expect((await rows())[other.name]).toMatchObject({ releaseId: release.id, instance: before[other.name]!.instance, state: "up" });
    // The app answers meanwhile: ps shows the serving dyno on the release before.
    const ps = await api(`/apps/${app.name}/dynos`, { token: owner.token });
    expect(ps.body.find((d: { name: string }) => d.name === other.name)).toMatchObject({ state: "up", release: { version: 2 } });

    // Restarted and up: the roll goes on.
    await heartbeat([report(replaced[0]!, "up"), report(other, "up")]);
    const after = (await rows())[other.name]!;
    expect(after.releaseId).not.toBe(release.id);
    expect(after.instance).not.toBe(before[other.name]!.instance);
    expect(
      (
        await (
          await db()
        )
          .select()
          .from(dynos)
          .where(and(eq(dynos.appId, app.id), eq(dynos.releaseId, release.id)))
      ).length,
    ).toBe(0);
  });
});
