import { DurableObject } from "cloudflare:workers";
import { and, eq } from "drizzle-orm";
import { withDb } from "../services/context.ts";
import { dispatchEvents } from "../services/events/outbox.ts";
import { dynos } from "../db/schema/index.ts";
import type { Bindings } from "../env.ts";
import { wakeApp } from "../services/eco/sleep.ts";

export type WakeOutcome = "up" | "timeout" | "exhausted";

/** How long a wake may take before requests give up (Heroku's router waits 75 s: H20). */
export const WAKE_TIMEOUT_MS = 75_000;

/**
 * One per app: coordinates waking a sleeping app so that concurrent requests wait on
 * the same wake instead of each starting dynos.
 */
export class AppCoordinator extends DurableObject<Bindings> {
  private waking: Promise<WakeOutcome> | undefined;

  /**
   * Wakes the app (once, however many callers) and resolves when a web dyno is up; with
   * `exhausted` at once when its owner's eco dyno hours are spent, or `timeout`.
   */
  async wake(appId: string): Promise<WakeOutcome> {
    this.waking ??= this.doWake(appId).finally(() => (this.waking = undefined));
    return this.waking;
  }

  private doWake(appId: string): Promise<WakeOutcome> {
    return withDb(this.env, async (db) => {
      // The platform acts (a visitor's request woke the app): its event tells the hosts, now.
      const changes = await wakeApp(db, appId);
      if (!changes) return "exhausted";
      await dispatchEvents(db, this.env, { appId });
      const deadline = Date.now() + WAKE_TIMEOUT_MS;
      while (Date.now() < deadline) {
        const [up] = await db
          .select({ id: dynos.id })
          .from(dynos)
          .where(and(eq(dynos.appId, appId), eq(dynos.type, "web"), eq(dynos.desired, "up"), eq(dynos.state, "up")))
          .limit(1);
        if (up) return "up";
        await new Promise((r) => setTimeout(r, 200));
      }
      return "timeout";
    });
  }
}
