import path from "node:path";
import { fireScheduled, wranglerCrons } from "../local/cron.ts";
import { parseFlags } from "./args.ts";
import { localWorker } from "../local/running.ts";

/**
 * `dynoplane cron:run [--cron EXPR]`: runs the Worker's scheduled handler once, now, on the
 * platform `npm start` runs here (keep-alive pings, metering, idle sleep, housekeeping),
 * and waits for it to finish. The schedule defaults to wrangler.toml's first.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags } = parseFlags(args, { cron: { type: "string" } });
  const home = path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane");
  const { controlSocket } = localWorker(home);
  const cron = typeof flags.cron === "string" ? flags.cron : (wranglerCrons()[0] ?? "*/10 * * * *");
  const at = new Date();
  const outcome = await fireScheduled(controlSocket, cron, at);
  console.log(`Scheduled run (${cron}) at ${at.toISOString()}: ${outcome.outcome} in ${outcome.ms} ms`);
  return outcome.ok ? 0 : 1;
}
