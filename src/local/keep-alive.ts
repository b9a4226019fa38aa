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
  /**
   * Starts keeping it alive, when it was made with `armed: false` (a start-up that checks
   * the first process itself): one that died meanwhile is started again now.
   */
  arm(): void;
  stop(graceMs: number): Promise<void>;
}

/**
 * Keeps a service of the local platform running: when it exits without being asked to,
 * the death and the restart are said on the console and `launch` runs again after a
 * back-off, as a process supervisor would.
 */
export function keepAlive(
  label: string,
  launch: () => ManagedChild,
  log: (message: string) => void = (m) => console.error(`dynoplane: ${m}`),
  o: { armed?: boolean } = {},
): KeptAlive {
  let child = launch();
  let stopping = false;
  let armed = o.armed ?? true;
  /** A death while unarmed: restarted by `arm`. */
  let unanswered: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let restarts = 0;
  let deaths = 0;
  let startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const restart = (code: number | null, signal: NodeJS.Signals | null) => {
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
  };
  const watch = (c: ManagedChild) =>
    c.child.once("exit", (code, signal) => {
      if (stopping) return;
      // What it started in its process group (the agent's dyno launchers) would hold its ports.
      try {
        process.kill(-c.child.pid!, "SIGKILL");
      } catch {
        // Nothing left.
      }
      if (armed) restart(code, signal);
      else unanswered = { code, signal };
    });
  watch(child);
  return {
    current: () => child,
    restarts: () => restarts,
    arm() {
      if (armed || stopping) return;
      armed = true;
      if (unanswered) restart(unanswered.code, unanswered.signal);
    },
    async stop(graceMs) {
      stopping = true;
      clearTimeout(timer);
      await child.stop(graceMs);
    },
  };
}
