import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDb } from "../../src/db/client.ts";
import { dynos, hosts, releases } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/hosts.ts";
import { placeDynos } from "../../src/services/placement.ts";
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
});
