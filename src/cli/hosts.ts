import { drainHost, type HostView, listHosts, removeHost, undrainHost } from "../services/fleet/fleet.ts";
import { onOperatorDatabase } from "./operator-db.ts";

/**
 * The fleet for its operator: `dynoplane hosts` lists the hosts; `hosts:drain NAME` stops
 * placing dynos on one and moves its dynos away one at a time (each new instance up on
 * another host before the old one stops); `hosts:undrain NAME` takes it back; `hosts:remove
 * NAME` forgets an empty host. On the database of DATABASE_URL, or the local platform's.
 */

/** How long ago, in seconds. */
const ago = (at: Date | null, now: number) => (at ? `${Math.max(0, Math.round((now - at.getTime()) / 1000))}s ago` : "never");

/** The hosts as a table (pure, for `dynoplane hosts`). */
export function hostsTable(rows: HostView[], now = Date.now()): string {
  const header = ["NAME", "STATE", "ADDRESS", "LAST HEARTBEAT", "CAPACITY", "COMMITTED", "DYNOS", "AGENT"];
  const cells = rows.map((h) => [
    h.name,
    h.state,
    h.url ?? "-",
    ago(h.lastHeartbeatAt, now),
    `${h.capacityMb} MB`,
    `${h.committedMb} MB (${h.capacityMb ? Math.round((h.committedMb / h.capacityMb) * 100) : 0}%)`,
    String(h.dynos),
    h.agentVersion ?? "-",
  ]);
  const widths = header.map((_, i) => Math.max(header[i]!.length, ...cells.map((c) => c[i]!.length)));
  return [header, ...cells]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

function nameArg(args: string[], command: string): string | null {
  const name = args[0];
  if (!name || args.length > 1 || !/^[a-z0-9][a-z0-9.-]{0,62}$/i.test(name)) {
    console.error(`usage: dynoplane ${command} NAME`);
    return null;
  }
  return name;
}

export const list = {
  run: (args: string[]) => {
    if (args.length) {
      console.error("usage: dynoplane hosts");
      return Promise.resolve(2);
    }
    return onOperatorDatabase(async (db) => {
      const rows = await listHosts(db);
      console.log(rows.length ? hostsTable(rows) : "No hosts yet: register one with dynoplane hosts:create NAME.");
      return 0;
    });
  },
};

export const drain = {
  run: (args: string[]) => {
    const name = nameArg(args, "hosts:drain");
    if (!name) return Promise.resolve(2);
    return onOperatorDatabase(async (db) => {
      await drainHost(db, { actor: null, via: "cli" }, name);
      console.log(`Draining ${name}: it takes no new dynos, and its dynos move to other hosts one at a time. dynoplane hosts shows it empty when it is done.`);
      return 0;
    });
  },
};

export const undrain = {
  run: (args: string[]) => {
    const name = nameArg(args, "hosts:undrain");
    if (!name) return Promise.resolve(2);
    return onOperatorDatabase(async (db) => {
      await undrainHost(db, { actor: null, via: "cli" }, name);
      console.log(`${name} takes dynos again.`);
      return 0;
    });
  },
};

export const remove = {
  run: (args: string[]) => {
    const name = nameArg(args, "hosts:remove");
    if (!name) return Promise.resolve(2);
    return onOperatorDatabase(async (db) => {
      await removeHost(db, name);
      console.log(`Removed ${name}; its agent's secret no longer works.`);
      return 0;
    });
  },
};
