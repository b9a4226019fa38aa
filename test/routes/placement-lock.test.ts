import { eq, inArray, isNull, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDb } from "../../src/db/client.ts";
import { dynos, hosts, releases } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { placeDynos } from "../../src/services/dynos/placement.ts";
import { platform } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, seedApp } from "../support/own-database.ts";

// Placements run from many places at once (a release, a scale, the fleet watch). Two at
// the same time must never count the same free memory: a host with room for two dynos
// gets two, however many placements race. A database of its own, so that only this
// test's host is there to place on.

describe.skipIf(!platform().adminDatabaseUrl)("placing dynos concurrently", () => {
  let own: OwnDatabase;

  beforeAll(async () => {
    own = await createOwnDatabase("placement");
  }, 60_000);
  afterAll(() => own?.drop());

  it("never over-commits a host", async () => {
    const db = own.handle.db;
    const { account, app } = await seedApp(db, "placer");
    const [release] = await db.insert(releases).values({ appId: app!.id, version: 1, description: "Initial release", userEmail: account!.email }).returning();
    const { host } = await createHost(db, "room-for-two");
    await db.update(hosts).set({ state: "up", capacityMb: 1024, url: "http://127.0.0.1:9", lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, host.id));

    // Four scales at once, as four requests would make them: each transaction (on a
    // connection of its own) adds two 512 MB dynos and places them. Each sees only its own
    // new dynos and the committed placements; the host has room for two in all.
    const handles = await Promise.all(Array.from({ length: 4 }, () => openDb(own.url)));
    try {
      await Promise.all(
        handles.map((h, n) =>
          h.db.transaction(async (tx) => {
            await tx
              .insert(dynos)
              .values(
                [1, 2].map((i) => ({ appId: app!.id, releaseId: release!.id, name: `web.${n * 2 + i}`, type: "web", command: "x", size: "Standard-1X" })),
              );
            await placeDynos(tx);
          }),
        ),
      );
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }

    const placed = await db.select({ id: dynos.id }).from(dynos).where(eq(dynos.hostId, host.id));
    expect(placed).toHaveLength(2);
  }, 60_000);

  it("spreads each app's web dynos over hosts, within capacity, when 30 scale requests arrive at once", async () => {
    const db = own.handle.db;
    // The dynos the first test left without room would take room here: they go.
    await db.delete(dynos).where(isNull(dynos.hostId));
    // Three hosts with room for 48, 16 and 16 dynos of 512 MB: by free memory alone, the big
    // one would take both dynos of many apps.
    const sizes = [24_576, 8_192, 8_192];
    const placedOn: string[] = [];
    for (const [i, capacityMb] of sizes.entries()) {
      const { host } = await createHost(db, `spread-${i}-${Date.now().toString(36)}`);
      await db.update(hosts).set({ state: "up", capacityMb, url: "http://127.0.0.1:9", lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, host.id));
      placedOn.push(host.id);
    }
    const seeded = await Promise.all(Array.from({ length: 30 }, (_, i) => seedApp(db, `spread${i}`)));
    const releaseOf = new Map<string, string>();
    for (const { account, app } of seeded) {
      const [release] = await db.insert(releases).values({ appId: app.id, version: 1, description: "Initial release", userEmail: account.email }).returning();
      releaseOf.set(app.id, release!.id);
    }
    // The 30 scales at once, each on a connection of its own, as 30 requests would make them.
    const handles = await Promise.all(seeded.map(() => openDb(own.url)));
    try {
      await Promise.all(
        seeded.map(({ app }, n) =>
          handles[n]!.db.transaction(async (tx) => {
            await tx
              .insert(dynos)
              .values(
                [1, 2].map((i) => ({ appId: app.id, releaseId: releaseOf.get(app.id)!, name: `web.${i}`, type: "web", command: "x", size: "Standard-1X" })),
              );
            await placeDynos(tx);
          }),
        ),
      );
    } finally {
      await Promise.all(handles.map((h) => h.close()));
    }
    const rows = await db
      .select({ appId: dynos.appId, hostId: dynos.hostId })
      .from(dynos)
      .where(
        inArray(
          dynos.appId,
          seeded.map((s) => s.app.id),
        ),
      );
    expect(rows).toHaveLength(60);
    expect(rows.filter((r) => !r.hostId || !placedOn.includes(r.hostId))).toEqual([]);
    // No app has its two web dynos on one host.
    for (const { app } of seeded) {
      const mine = rows.filter((r) => r.appId === app.id).map((r) => r.hostId);
      expect(new Set(mine).size, app.name).toBe(2);
    }
    // No host is committed beyond its capacity.
    for (const [i, hostId] of placedOn.entries()) expect(rows.filter((r) => r.hostId === hostId).length * 512).toBeLessThanOrEqual(sizes[i]!);
  }, 120_000);
});
