import http from "node:http";
import path from "node:path";
import { Cron } from "croner";
import { ROOT } from "./worker.ts";
import { readWranglerConfig } from "./workerd-config.ts";

/** The cron schedules of `[triggers] crons` in wrangler.toml: what Cloudflare fires the Worker on. */
export function wranglerCrons(file = path.join(ROOT, "wrangler.toml")): string[] {
  return readWranglerConfig(file).crons;
}

/** What one scheduled run answered. */
export interface ScheduledOutcome {
  ok: boolean;
  /** workerd's word for it: `ok`, or `exception` when the handler threw. */
  outcome: string;
  ms: number;
}

/**
 * Runs the Worker's `scheduled()` handler once, as Cloudflare would for `cron` at `time`:
 * through the control socket of the local Worker (see workerdConfig), which calls the real
 * handler in workerd with that `scheduledTime`. Resolves when the run has finished.
 */
export function fireScheduled(controlSocket: string, cron: string, time = new Date()): Promise<ScheduledOutcome> {
  const started = Date.now();
  const body = JSON.stringify({ cron, scheduledTime: time.getTime() });
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: controlSocket,
        method: "POST",
        path: "/scheduled",
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          const outcome = res.statusCode === 200 ? String((JSON.parse(text) as { outcome?: unknown }).outcome) : `status ${res.statusCode}: ${text.trim()}`;
          resolve({ ok: outcome === "ok", outcome, ms: Date.now() - started });
        });
      },
    );
    // A run over very many apps takes a while; Cloudflare allows a scheduled handler 15 minutes.
    req.setTimeout(15 * 60_000, () => req.destroy(new Error("the scheduled run did not finish within 15 minutes")));
    req.on("error", reject);
    req.end(body);
  });
}

export interface LocalCron {
  /** When each schedule fires next. */
  next(): Array<{ cron: string; at: Date | null }>;
  stop(): void;
}

/**
 * Fires the Worker's scheduled handler on each schedule, as Cloudflare's cron triggers do
 * (UTC, on the minute). A run that is still going when its schedule comes round again is
 * not doubled: that tick is skipped and said on the console. A run that fails is said too.
 */
export function startLocalCron(opts: { controlSocket: string; schedules: string[]; log?: (message: string) => void }): LocalCron {
  const log = opts.log ?? ((m: string) => console.error(`dynoplane: ${m}`));
  const jobs = opts.schedules.map((cron) => {
    let running = false;
    const job = new Cron(cron, { timezone: "UTC", protect: false }, async (self: Cron) => {
      const time = self.currentRun() ?? new Date();
      if (running) return log(`the scheduled run for ${cron} at ${time.toISOString()} was skipped: the previous one is still going`);
      running = true;
      try {
        const outcome = await fireScheduled(opts.controlSocket, cron, time);
        if (!outcome.ok) log(`the scheduled run for ${cron} at ${time.toISOString()} failed: ${outcome.outcome}`);
      } catch (err) {
        log(`the scheduled run for ${cron} at ${time.toISOString()} failed: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        running = false;
      }
    });
    return { cron, job };
  });
  return {
    next: () => jobs.map(({ cron, job }) => ({ cron, at: job.nextRun() })),
    stop: () => {
      for (const { job } of jobs) job.stop();
    },
  };
}
