import { eq, inArray } from "drizzle-orm";
import { signToken } from "../../auth/signing.ts";
import type { Database } from "../../db/client.ts";
import type { Bindings } from "../../env.ts";
import { dynos, hosts } from "../../db/schema/index.ts";
import { AGENT_PATHS, type Command } from "../../protocol/host.ts";
import { desiredForHost, type DynoChanges } from "./dynos.ts";

export interface CommandConfig {
  signingKey: string;
  bootTimeoutS: number;
}

/** How this platform signs commands to hosts, and the boot timeout dynos get. */
export const commandConfig = (env: Pick<Bindings, "COMMAND_SIGNING_KEY" | "BOOT_TIMEOUT_S">): CommandConfig => ({
  signingKey: env.COMMAND_SIGNING_KEY,
  bootTimeoutS: Number(env.BOOT_TIMEOUT_S ?? 60) || 60,
});

/**
 * Tells hosts about changes at once (start/stop), after the change is committed. A command
 * that does not arrive is harmless: the host's next heartbeat converges on the same state.
 */
export async function pushDynoChanges(db: Database, config: CommandConfig, changes: DynoChanges): Promise<void> {
  const byHost = new Map<string, Command[]>();
  const add = (hostId: string, cmd: Command) => byHost.set(hostId, [...(byHost.get(hostId) ?? []), cmd]);
  if (changes.start.length) {
    const placed = await db.select({ id: dynos.id, hostId: dynos.hostId }).from(dynos).where(inArray(dynos.id, changes.start));
    const hostIds = [...new Set(placed.map((d) => d.hostId).filter((h): h is string => !!h))];
    for (const hostId of hostIds) {
      const ids = placed.filter((d) => d.hostId === hostId).map((d) => d.id);
      for (const dyno of await desiredForHost(db, hostId, config.bootTimeoutS, ids)) add(hostId, { op: "start", dyno });
    }
  }
  for (const s of changes.stop) if (s.hostId) add(s.hostId, { op: "stop", dyno_id: s.dynoId });
  if (!byHost.size) return;
  const targets = await db
    .select({ id: hosts.id, url: hosts.url })
    .from(hosts)
    .where(inArray(hosts.id, [...byHost.keys()]));
  await Promise.allSettled(
    targets.flatMap((host) => (host.url ? byHost.get(host.id)!.map((cmd) => sendCommand(config.signingKey, host.id, host.url!, cmd)) : [])),
  );
}

/** Sends one signed command to a host agent. */
export async function sendCommand(signingKey: string, hostId: string, hostUrl: string, command: Command): Promise<boolean> {
  const token = await signToken(signingKey, { purpose: "command", audience: hostId, ttlSeconds: 60 });
  try {
    const res = await fetch(new URL(AGENT_PATHS.commands, hostUrl), {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(command),
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** Looks up one host's command URL (for router and wake paths). */
export async function hostUrl(db: Database, hostId: string): Promise<string | null> {
  const [row] = await db.select({ url: hosts.url }).from(hosts).where(eq(hosts.id, hostId));
  return row?.url ?? null;
}
