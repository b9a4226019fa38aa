import type { ManagedChild } from "./child.ts";

/** Restart delays after a death: 1 s doubling to 30 s; a run of a minute starts the count afresh. */
export function restartDelayMs(deathsInARow: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.max(0, deathsInARow - 1));
}

/** A platform service that is started again whenever it dies, until it is stopped. */
export interface KeptAlive {
  /** The running child (a new one after each restart). */
  current(): ManagedChild;
  /** How many times it was started again. */
  restarts(): number;
  stop(graceMs: number): Promise<void>;
}

/**
 * Keeps a service of the local platform running: when it exits without being asked to,
 * the death and the restart are said on the console and `launch` runs again after a
 * back-off, as a process supervisor would.
 */
export function keepAlive(label: string, launch: () => ManagedChild, log: (message: string) => void = (m) => console.error(`dynoplane: ${m}`)): KeptAlive {
  let child = launch();
  let stopping = false;
  let restarts = 0;
  let deaths = 0;
  let startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const watch = (c: ManagedChild) =>
    c.child.once("exit", (code, signal) => {
      if (stopping) return;
      // What it started in its process group (the agent's dyno launchers) would hold its ports.
      try {
        process.kill(-c.child.pid!, "SIGKILL");
      } catch {
        // Nothing left.
      }
      deaths = Date.now() - startedAt > 60_000 ? 1 : deaths + 1;
      const delay = restartDelayMs(deaths);
      log(`${label} died (${signal ?? `exit code ${code}`}); starting it again in ${delay / 1000} s`);
      timer = setTimeout(() => {
        if (stopping) return;
        child = launch();
        startedAt = Date.now();
        restarts++;
        watch(child);
        log(`${label} started again (pid ${child.child.pid})`);
      }, delay);
    });
  watch(child);
  return {
    current: () => child,
    restarts: () => restarts,
    async stop(graceMs) {
      stopping = true;
      clearTimeout(timer);
      await child.stop(graceMs);
    },
  };
}
