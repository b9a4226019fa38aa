import { eq, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DbHandle } from "../../src/db/client.ts";
import { hosts } from "../../src/db/schema/index.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { platform } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, throwawaySigningKey } from "../support/own-database.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";

// A host that dies when no other host heartbeats: the FleetWatch Durable Object's alarm
// notices it. A Worker of its own, on a database of its own, so that the platform's own
// agent (whose heartbeats also retire silent hosts) cannot be what noticed.

const adminUrl = platform().adminDatabaseUrl;

describe.skipIf(!adminUrl)("FleetWatch", () => {
  let worker: SecondWorker;
  let own: OwnDatabase;
  let handle: DbHandle;

  beforeAll(async () => {
    own = await createOwnDatabase("fleet");
    handle = own.handle;
    // A key of its own: its heartbeat answers carry the command key. Its fleet watch looks every second.
    worker = await startSecondWorker({ DATABASE_URL: own.url, COMMAND_SIGNING_KEY: await throwawaySigningKey(), FLEET_CHECK_S: "1" });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await own?.drop();
  });

  it("marks the last host down on its own schedule once it stops heart-beating", async () => {
    const { host, secret } = await createHost(handle.db, "lonely");
    const beat = await worker.api("/internal/hosts/heartbeat", {
      method: "POST",
      headers: { Authorization: `Bearer ${secret}` },
      body: { url: "http://127.0.0.1:9", capacity_mb: 1024, dynos: [], dropped_log_lines: 0 },
    });
    expect(beat.status).toBe(200);
    const row = async () => (await handle.db.select().from(hosts).where(eq(hosts.id, host.id)))[0]!;
    expect((await row()).state).toBe("up");
    // Its last heartbeat long ago; nothing heartbeats after it.
    await handle.db.update(hosts).set({ lastHeartbeatAt: sql`now() - interval '5 minutes'` }).where(eq(hosts.id, host.id));
    const armed = Date.now();
    await waitFor("the host marked down", async () => (await row()).state === "down", 30_000, 100);
    // On the watch's own schedule (FLEET_CHECK_S), not Heroku's default ten seconds.
    expect(Date.now() - armed).toBeLessThan(10_000);
  }, 60_000);
});
