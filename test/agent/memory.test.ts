import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { detectCgroups } from "../../src/agent/sandbox/cgroups.ts";
import type { LogLine } from "../../src/protocol/host.ts";
import { appPid, desiredDyno, supervisorFixture, waitFor } from "./support.ts";

const { start: supervisor } = supervisorFixture();

/** A worker that holds `mb` megabytes of touched memory and stays alive. */
const hog = (mb: number) => `node -e 'const b = Buffer.alloc(${mb} * 1024 * 1024, 1); console.log("holding", b.length); setInterval(() => b[0]++, 1000)'`;

const texts = (lines: LogLine[]) => lines.filter((l) => l.source === "heroku").map((l) => l.text);

// Memory quotas need the agent to be root on a machine with cgroup v1's memory controller.
describe.skipIf(process.getuid?.() !== 0 || !detectCgroups())("dyno memory quotas", () => {
  it("runs each dyno inside a memory cgroup limited to twice its size's memory", async () => {
    const { sup } = await supervisor();
    const dyno = desiredDyno({ type: "worker", name: "worker.1", command: hog(8), memory_mb: 64 });
    sup.ensure(dyno);
    const info = await waitFor("the worker up", () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id));
    // A worker is up at once; its node process follows a moment later.
    const app = await waitFor("the app process", () => {
      try {
        return appPid(info);
      } catch {
        return 0;
      }
    });
    const cgroup = readFileSync(`/proc/${app}/cgroup`, "utf8")
      .split("\n")
      .find((l) => /:memory:/.test(l))!;
    expect(`/sys/fs/cgroup/memory${cgroup.split(":")[2]}`).toBe(info.sandbox!.cgroup.dirs[0]);
    const limit = readFileSync(`${info.sandbox!.cgroup.dirs[0]}/memory.limit_in_bytes`, "utf8").trim();
    expect(Number(limit)).toBe(128 * 1024 * 1024);
    // The app itself runs unprivileged, not as the root shell that put it there.
    expect(readFileSync(`/proc/${app}/status`, "utf8")).not.toMatch(/^Uid:\s+0\s/m);
  });

  it("logs R14 while a dyno is over its quota, and keeps it running", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ type: "worker", name: "worker.1", command: hog(96), memory_mb: 64 });
    sup.ensure(dyno);
    await waitFor("an R14 line", () => texts(lines).includes("Error R14 (Memory quota exceeded)"), 30_000);
    expect(sup.inspect(dyno.id)?.state).toBe("up");
    // The metrics report: the dyno's usage over its quota, R14 once, taken once.
    const [report] = sup.takeMetrics();
    expect(report).toMatchObject({ id: dyno.id, memory_quota_mb: 64, restarts: 0, errors: ["R14"] });
    expect(report!.usage!.memory_rss_mb + report!.usage!.memory_cache_mb).toBeGreaterThan(64);
    expect(report!.usage!.load_avg_1m).toBeGreaterThanOrEqual(0);
    expect(sup.takeMetrics()[0]?.errors ?? []).toEqual([]);
  });

  it("reports a dyno's restarts and its R15 with its next metrics, after the process ended", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ type: "worker", name: "worker.1", command: hog(400), memory_mb: 64 });
    sup.ensure(dyno);
    await waitFor("an R15 line", () => texts(lines).some((t) => t.startsWith("Error R15")), 30_000);
    // Reports taken as the agent takes them every 20 s, until the crash restart shows.
    const seen = { restarts: 0, errors: new Set<string>() };
    await waitFor("a crash restart in the reports", () => {
      for (const r of sup.takeMetrics()) {
        expect(r.id).toBe(dyno.id);
        seen.restarts += r.restarts;
        for (const e of r.errors) seen.errors.add(e);
      }
      return seen.restarts >= 1;
    });
    expect([...seen.errors]).toContain("R15");
  });

  it("stops a dyno at twice its quota with R15, then shows it crashed", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ type: "worker", name: "worker.1", command: hog(400), memory_mb: 64 });
    sup.ensure(dyno);
    await waitFor("an R15 line", () => texts(lines).some((t) => t.startsWith("Error R15 (Memory quota vastly exceeded)")), 30_000);
    expect(texts(lines)).toContain("Process exited with status 137");
    expect(texts(lines)).toContain("State changed from up to crashed");
    // It never got to hold what it asked for.
    expect(
      lines
        .filter((l) => l.source === "app")
        .map((l) => l.text)
        .join("\n"),
    ).not.toContain("holding");
  });
});
