import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { and, eq, inArray, isNull, sql } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { accounts, apps, dynos, hosts, releases } from "../db/schema/index.ts";
import { startEmbeddedPostgres } from "../local/postgres.ts";
import { runMigrations } from "../node/migrate.ts";
import { memoryOf, placeDynos } from "../services/dynos/placement.ts";

/** The benchmark's settings, parsed from its command line by `dynoplane bench`. */
export interface PlacementBenchOptions {
  dynos: number;
  hosts: number;
}

/** Per app: 2 web dynos and 1 worker of 512 MB, 1 web of 1 GB, 1 more worker of 512 MB. */
const APP_SHAPE: Array<{ name: string; type: string; size: string }> = [
  { name: "web.1", type: "web", size: "Standard-1X" },
  { name: "web.2", type: "web", size: "Standard-1X" },
  { name: "web.3", type: "web", size: "Standard-2X" },
  { name: "worker.1", type: "worker", size: "Standard-1X" },
  { name: "worker.2", type: "worker", size: "Standard-1X" },
];

/**
 * Placement at fleet scale, rows only: `hosts` hosts of mixed capacity (16, 32 and 64 GB,
 * sized so the fleet ends about 70% committed) and apps of five dynos each, `dynos` in all,
 * placed as scaling would place them (each app's dynos in one transaction under the
 * placement lock). Prints the time per placement beside the floor (the same host
 * assignments written with no choosing), the worst host's utilisation against the mean, and
 * how many apps have two dynos of one process type on one host.
 */
export async function run(options: PlacementBenchOptions): Promise<number> {
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-placement-"));
  chmodSync(home, 0o755);
  const pg = await startEmbeddedPostgres(path.join(home, "postgres"), { ephemeral: true, quiet: true, label: "bench" });
  try {
    await runMigrations(pg.url);
    const handle = await openDb(pg.url);
    const db = handle.db;
    try {
      const appCount = Math.ceil(options.dynos / APP_SHAPE.length);
      const wantedMb = appCount * APP_SHAPE.reduce((n, d) => n + memoryOf(d.size), 0);
      // Mixed machines; capacities scaled so the fleet's committed share ends about 70%.
      const shares = Array.from({ length: options.hosts }, (_, i) => [1, 2, 4][i % 3]!);
      const unit = wantedMb / 0.7 / shares.reduce((a, b) => a + b, 0);
      const hostRows = await db
        .insert(hosts)
        .values(
          shares.map((share, i) => ({
            name: `bench-${i}`,
            secretHash: `bench-${i}`,
            state: "up" as const,
            capacityMb: Math.round(share * unit),
            url: "http://127.0.0.1:9",
            lastHeartbeatAt: new Date(),
          })),
        )
        .returning({ id: hosts.id, capacityMb: hosts.capacityMb });
      const [account] = await db.insert(accounts).values({ email: "bench@example.com", passwordHash: "x" }).returning();
      const appIds: string[] = [];
      for (let i = 0; i < appCount; i += 500) {
        const rows = await db
          .insert(apps)
          .values(Array.from({ length: Math.min(500, appCount - i) }, (_, k) => ({ name: `bench-app-${i + k}`, ownerId: account!.id })))
          .returning({ id: apps.id });
        appIds.push(...rows.map((r) => r.id));
      }
      const releaseOf = new Map<string, string>();
      for (let i = 0; i < appIds.length; i += 500) {
        const rows = await db
          .insert(releases)
          .values(appIds.slice(i, i + 500).map((appId) => ({ appId, version: 1, description: "Initial release", userEmail: "bench@example.com" })))
          .returning({ id: releases.id, appId: releases.appId });
        for (const r of rows) releaseOf.set(r.appId, r.id);
      }
      const addDynos = (appId: string) =>
        APP_SHAPE.map((d) => ({ appId, releaseId: releaseOf.get(appId)!, name: d.name, type: d.type, command: "x", size: d.size, state: "starting" as const }));

      // As scaling places them: each app's new dynos placed in its own transaction.
      const started = performance.now();
      for (const appId of appIds) {
        await db.transaction(async (tx) => {
          await tx.insert(dynos).values(addDynos(appId));
          await placeDynos(tx);
        });
      }
      const placeMs = performance.now() - started;
      const [{ unplaced }] = (await db.select({ unplaced: sql<number>`count(*)::int` }).from(dynos).where(isNull(dynos.hostId))) as [{ unplaced: number }];

      // The floor: the same rows written and assigned hosts in turn, with no choosing and no lock.
      await db.delete(dynos);
      let turn = 0;
      const floorStarted = performance.now();
      for (const appId of appIds) {
        await db.transaction(async (tx) => {
          const rows = await tx.insert(dynos).values(addDynos(appId)).returning({ id: dynos.id });
          for (const r of rows) {
            await tx
              .update(dynos)
              .set({ hostId: hostRows[turn++ % hostRows.length]!.id })
              .where(and(eq(dynos.id, r.id), isNull(dynos.hostId)));
          }
        });
      }
      const floorMs = performance.now() - floorStarted;

      // Utilisation and spreading of the placed fleet (placed again, as measured).
      await db.delete(dynos);
      for (const appId of appIds) {
        await db.transaction(async (tx) => {
          await tx.insert(dynos).values(addDynos(appId));
          await placeDynos(tx);
        });
      }
      const committed = await db
        .select({ hostId: dynos.hostId, size: dynos.size, n: sql<number>`count(*)::int` })
        .from(dynos)
        .where(
          inArray(
            dynos.hostId,
            hostRows.map((h) => h.id),
          ),
        )
        .groupBy(dynos.hostId, dynos.size);
      const used = new Map<string, number>();
      for (const c of committed) used.set(c.hostId!, (used.get(c.hostId!) ?? 0) + c.n * memoryOf(c.size));
      const utilisation = hostRows.map((h) => (used.get(h.id) ?? 0) / h.capacityMb);
      const mean = utilisation.reduce((a, b) => a + b, 0) / utilisation.length;
      const worst = Math.max(...utilisation);
      const over = utilisation.filter((u) => u > 1).length;
      const doubledGroups = await db.select({ appId: dynos.appId }).from(dynos).groupBy(dynos.appId, dynos.type, dynos.hostId).having(sql`count(*) > 1`);
      const doubled = doubledGroups.length;

      const total = appIds.length * APP_SHAPE.length;
      console.log(
        `\nPlacement: ${total} dynos (${appIds.length} apps of ${APP_SHAPE.length}) on ${hostRows.length} hosts of 16, 32 and 64 GB-like shares, rows only\n`,
      );
      console.log(
        `placing, as scaling does (one transaction per app, placement lock): ${(placeMs / total).toFixed(3)} ms per dyno, ${(placeMs / 1000).toFixed(2)} s in all`,
      );
      console.log(
        `floor (the same rows assigned hosts in turn, no choosing, no lock):   ${(floorMs / total).toFixed(3)} ms per dyno, ${(floorMs / 1000).toFixed(2)} s in all`,
      );
      console.log(`placement / floor: ${(placeMs / floorMs).toFixed(2)}`);
      console.log(`placed ${total - unplaced} of ${total} (${unplaced} left without a host)`);
      const fleetWide = [...used.values()].reduce((a, b) => a + b, 0) / hostRows.reduce((n, h) => n + h.capacityMb, 0);
      console.log(
        `utilisation: mean of hosts ${(mean * 100).toFixed(1)}% (fleet-wide ${(fleetWide * 100).toFixed(1)}%), worst host ${(worst * 100).toFixed(1)}% (${(worst / mean).toFixed(2)}x the mean), hosts over capacity: ${over}`,
      );
      console.log(`apps with two dynos of one process type on one host: ${doubled}`);
      return over || unplaced ? 1 : 0;
    } finally {
      await handle.close();
    }
  } finally {
    await pg.stop();
    rmSync(home, { recursive: true, force: true });
  }
}
