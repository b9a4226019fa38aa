import { describe, expect, it } from "vitest";
import { spawnService } from "../../src/local/child.ts";
import { keepAlive, restartDelayMs } from "../../src/local/keep-alive.ts";

describe("keeping a local service alive", () => {
  it.each([
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [6, 30_000],
    [20, 30_000],
  ])("waits %i deaths in a row: %i ms", (deaths, ms) => expect(restartDelayMs(deaths)).toBe(ms));

  it("starts a service that died again, says so, and stops it for good when asked", async () => {
    const said: string[] = [];
    let launches = 0;
    const kept = keepAlive(
      "the sleeper",
      () => (launches++, spawnService("sleep", ["600"], { quiet: true })),
      (m) => said.push(m),
    );
    const first = kept.current().child.pid!;
    process.kill(first, "SIGKILL");
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const tick = () => (kept.restarts() === 1 ? resolve() : Date.now() - started > 10_000 ? reject(new Error("not restarted")) : setTimeout(tick, 50));
      tick();
    });
    expect(kept.current().child.pid).not.toBe(first);
    expect(said).toEqual(["the sleeper died (SIGKILL); starting it again in 1 s", `the sleeper started again (pid ${kept.current().child.pid})`]);
    await kept.stop(1_000);
    await new Promise((r) => setTimeout(r, 1_200));
    expect(launches).toBe(2);
    expect(kept.current().exited()).toBe(true);
  });

  it("made unarmed, says nothing of a death and starts nothing until armed; armed, starts the dead one again", async () => {
    const said: string[] = [];
    let launches = 0;
    const kept = keepAlive(
      "the starter",
      () => (launches++, spawnService("sleep", ["600"], { quiet: true })),
      (m) => said.push(m),
      { armed: false },
    );
    const first = kept.current();
    process.kill(first.child.pid!, "SIGKILL");
    // Past the first restart's delay: still the one launch, and not a word.
    await new Promise((r) => setTimeout(r, 1_300));
    expect(first.exited()).toBe(true);
    expect([launches, kept.restarts(), said]).toEqual([1, 0, []]);
    kept.arm();
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const tick = () => (kept.restarts() === 1 ? resolve() : Date.now() - started > 10_000 ? reject(new Error("not restarted")) : setTimeout(tick, 50));
      tick();
    });
    expect(said).toEqual(["the starter died (SIGKILL); starting it again in 1 s", `the starter started again (pid ${kept.current().child.pid})`]);
    await kept.stop(1_000);
    expect(launches).toBe(2);
  });
});
