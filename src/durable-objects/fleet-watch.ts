import { DurableObject } from "cloudflare:workers";
import { eq, inArray } from "drizzle-orm";
import { withDb } from "../services/context.ts";
import { dispatchEvents } from "../services/events/outbox.ts";
import { commandConfig, sendCommand } from "../services/dynos/host-commands.ts";
import { hosts } from "../db/schema/index.ts";
import type { Bindings } from "../env.ts";
import { advanceRollouts, appsRolling } from "../services/dynos/dynos.ts";
import { retireSilentHosts } from "../services/fleet/hosts.ts";
import { clocksOf } from "../lib/clocks.ts";
import { placeDynos } from "../services/dynos/placement.ts";
import { endStaleMoves, moveOffDrainingHosts } from "../services/fleet/fleet.ts";

/** How often the fleet is checked while any host is up. */

/**
 * One for the platform, and the fleet's one writer: on a schedule of its own (an alarm) it
 * retires hosts that stopped heart-beating, so a dead host's dynos move even when no other
 * host heartbeats, places unplaced dynos on the live hosts and asks those to sync at once.
 * Every heartbeat arms it; a new or returning host wakes it at once. It stays armed while
 * any host is up. (Releases and scaling place their own new dynos; placement takes a lock
 * in Postgres, so no two placements ever count the same free memory.)
 */
export class FleetWatch extends DurableObject<Bindings> {
  /** Makes sure a check is scheduled; cheap when one already is. */
  async arm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(Date.now() + clocksOf(this.env).fleetCheckMs);
  }

  /** Runs a check now (a host came up: dynos may be waiting for room). */
  async converge(): Promise<void> {
    await this.ctx.storage.setAlarm(Date.now());
  }

  /** Retires silent hosts and places their dynos; runs again while there are hosts to watch. */
  override async alarm(): Promise<void> {
    await withDb(this.env, async (db) => {
      const { retired, placed } = await db.transaction(async (tx) => {
        const retired = await retireSilentHosts(tx, clocksOf(this.env).hostTimeoutMs);
        // Draining hosts give up one dyno each per check, placed below like any other.
        await endStaleMoves(tx);
        await moveOffDrainingHosts(tx);
        return { retired, placed: await placeDynos(tx) };
      });
      if (retired) console.log(JSON.stringify({ fleet: "retired silent hosts", hosts: retired, timeout_ms: clocksOf(this.env).hostTimeoutMs }));
      // A release's roll that no heartbeat took further (one that failed meanwhile, say).
      // Its hosts are told by the events of the roll.
      await advanceRollouts(db, await appsRolling(db));
      await dispatchEvents(db, this.env);
      if (placed.size) {
        // Hosts that received dynos start them now, not at their next heartbeat.
        const targets = await db
          .select({ id: hosts.id, url: hosts.url })
          .from(hosts)
          .where(inArray(hosts.id, [...placed]));
        const { signingKey } = commandConfig(this.env);
        await Promise.allSettled(targets.map((h) => h.url && sendCommand(signingKey, h.id, h.url, { op: "sync" })));
      }
      const [up] = await db.select({ id: hosts.id }).from(hosts).where(eq(hosts.state, "up")).limit(1);
      if (up) await this.ctx.storage.setAlarm(Date.now() + clocksOf(this.env).fleetCheckMs);
    });
  }
}
