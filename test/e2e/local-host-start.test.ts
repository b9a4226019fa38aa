import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentWorkDir, startLocalHost } from "../../src/local/host.ts";
import { createOwnDatabase, type OwnDatabase } from "../support/own-database.ts";
import { platformTls } from "../support/second-worker.ts";

// `npm start` on a machine that cannot run the agent (a tool missing, a bad option) must
// say why and end, not start the agent again every few seconds behind an error.

describe("the local platform's host agent at start-up", () => {
  let own: OwnDatabase;
  let home: string;

  beforeAll(async () => {
    own = await createOwnDatabase("hoststart");
    home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-hoststart-"));
  });

  afterAll(async () => {
    await own?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  /** The processes of an agent on this home's work dir. */
  const agents = () =>
    readdirSync("/proc")
      .filter((pid) => /^\d+$/.test(pid))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(agentWorkDir(home));
        } catch {
          return false; // gone already
        }
      });

  it("stops one that exits during start-up, says why, and never starts it again", async () => {
    const started = startLocalHost({
      home,
      databaseUrl: own.url,
      apiUrl: "https://localhost:9",
      tls: platformTls(),
      quiet: true,
      python: { index: "file:///srv/wheels" },
    });
    await expect(started).rejects.toThrow(/the host agent exited during start-up[\s\S]*--python-index takes an http or https URL/);
    // Watched past the first restarts' delays (1 s, then 2 s): no agent on its work dir comes back.
    const seen = new Set<string>();
    for (const end = Date.now() + 4_000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) for (const pid of agents()) seen.add(pid);
    expect([...seen]).toEqual([]);
  });
});
