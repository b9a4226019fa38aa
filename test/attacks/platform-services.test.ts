import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { platform } from "../support/api.ts";
import { appName, closeDb, makeAccount, makeApp } from "../support/factories.ts";
import { deploySlug, destroyApp, visit, waitForAnswer } from "../support/slugs.ts";

// Attack: a dyno scans every port this machine listens on (the API, workerd's inspector,
// both Postgres servers, the agent). Defence: the dyno's network namespace and the agent's
// nftables table (src/agent/sandbox/network.ts), which let it reach only the add-on server's port.

afterAll(closeDb);

/** Every TCP port this machine listens on, on loopback or on all addresses (IPv4). */
function listeningPorts(): number[] {
  const ports = new Set<number>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== "0A" || !local) continue; // LISTEN
    const [addr, port] = local.split(":");
    if (addr === "0100007F" || addr === "00000000") ports.add(parseInt(port!, 16));
  }
  return [...ports].sort((a, b) => a - b);
}

describe.skipIf(sandboxProblems().length > 0)("a dyno on the local platform, as a hostile tenant", () => {
  it("reaches none of the platform's services: the API, workerd's inspector, Postgres, the agent", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner, appName("scanner"));
    try {
      await deploySlug(owner.token, app.name);
      await waitForAnswer(app.name);
      const ports = listeningPorts();
      // The scan covers the real services: the platform's HTTPS port and its database are among them.
      expect(ports).toContain(platform().port);
      expect(ports).toContain(Number(new URL(platform().databaseUrl).port));
      const probe = await visit(app.name, "/scan?targets=127.0.0.1:1");
      const address = probe.json!.address as string;
      expect(address).toMatch(/^10\.213\.\d+\.\d+$/);
      const gateway = address.replace(/\.\d+$/, ".1");
      const targets = ports.flatMap((p) => [`127.0.0.1:${p}`, `${gateway}:${p}`]);
      const scan = await visit(app.name, `/scan?targets=${targets.join(",")}`);
      const results = scan.json!.results as Record<string, string>;
      expect(Object.keys(results)).toHaveLength(targets.length);
      const reached = Object.entries(results)
        .filter(([, r]) => r === "connected")
        .map(([t]) => t);
      // Its own server is the one thing a dyno's loopback has (when the host happens to use that port too).
      expect(reached.filter((t) => t !== `127.0.0.1:${probe.json!.port}`)).toEqual([]);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });
});
