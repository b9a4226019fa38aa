import type { Context } from "hono";
import { openDb } from "../db/client.ts";
import type { AppEnv, Bindings } from "../env.ts";
import type { DynoChanges } from "../services/dynos.ts";
import { pushDynoChanges, type CommandConfig } from "../services/host-commands.ts";

export const commandConfig = (env: Bindings): CommandConfig => ({
  signingKey: env.COMMAND_SIGNING_KEY,
  bootTimeoutS: Number(env.BOOT_TIMEOUT_S ?? 60) || 60,
});

/** Sends committed dyno changes to their hosts after the response, on a connection of its own. */
export function pushAfterResponse(c: Context<AppEnv>, changes: DynoChanges): void {
  if (!changes.start.length && !changes.stop.length) return;
  const work = (async () => {
    const handle = await openDb(c.env.DATABASE_URL, { neonWsProxy: c.env.NEON_WS_PROXY });
    try {
      await pushDynoChanges(handle.db, commandConfig(c.env), changes);
    } finally {
      await handle.close();
    }
  })().catch((err) => console.error(JSON.stringify({ push_failed: String(err) })));
  c.executionCtx.waitUntil(work);
}
