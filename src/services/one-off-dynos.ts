import { and, eq } from "drizzle-orm";
import { type AppRow, dynos, formations } from "../db/schema/index.ts";
import { invalidParams } from "../errors.ts";
import { recordAudit } from "./audit.ts";
import { CONFIG_KEY_RE, CONFIG_LIMIT_BYTES } from "./config-vars.ts";
import { actingUser, logAppEvents, pushChanges, type ServiceContext } from "./context.ts";
import { listDynos, noChanges, runningRelease } from "./dynos.ts";
import { normalizeSize } from "./formation.ts";
import { placeDynos } from "./placement.ts";

/** What `heroku run` and `heroku run:detached` send (`POST /apps/{app}/dynos`). */
export interface OneOffInput {
  command: string;
  attach?: boolean;
  env?: Record<string, string | number>;
  size?: string;
  type?: string;
  force_no_tty?: boolean | null;
  time_to_live?: number;
}

/** Longest a one-off dyno may run (and its default): Heroku's 24 hours. */
export const MAX_TIME_TO_LIVE_S = 24 * 3600;
const MAX_COMMAND_BYTES = 16 * 1024;

/** The environment additions of a one-off dyno, checked as config vars are. */
function oneOffEnv(env: Record<string, string | number>): Record<string, string> {
  const out: Record<string, string> = {};
  let bytes = 0;
  for (const [key, value] of Object.entries(env)) {
    if (!CONFIG_KEY_RE.test(key))
      throw invalidParams(`Invalid env name ${JSON.stringify(key)}: use letters, digits and underscores, not starting with a digit.`);
    out[key] = String(value);
    bytes += key.length + out[key]!.length;
  }
  if (bytes > CONFIG_LIMIT_BYTES) throw invalidParams(`The env of a one-off dyno may total at most 32 kB; this totals ${bytes} bytes.`);
  return out;
}

/**
 * Starts a one-off dyno (`heroku run:detached`): `run.N` (N random, four digits, as on
 * Heroku) from the current release's slug with the app's config plus `env`, placed on a
 * host like any dyno and counted against its memory. Its output and state lines go to the
 * app's log as `app[run.N]` and `heroku[run.N]`; it ends when its command does, on
 * `heroku ps:stop run.N`, or after `time_to_live` seconds. A stopped (scaled to zero) app
 * still runs one-off dynos.
 */
export async function runOneOffDyno(ctx: ServiceContext, app: AppRow, input: OneOffInput) {
  const actor = actingUser(ctx);
  const command = input.command.trim();
  if (!command) throw invalidParams("A one-off dyno needs a command.");
  if (new TextEncoder().encode(command).length > MAX_COMMAND_BYTES || command.includes("\u0000")) throw invalidParams("That command is too long or not text.");
  if (input.attach) {
    throw invalidParams(
      "Attached one-off dynos (`heroku run`) are not available on this platform yet; `heroku run:detached` runs the command with its output in the app's logs.",
    );
  }
  if ((input.type ?? "run") !== "run") throw invalidParams(`One-off dynos are of type run (got ${JSON.stringify(input.type)}).`);
  const ttl = input.time_to_live ?? MAX_TIME_TO_LIVE_S;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TIME_TO_LIVE_S)
    throw invalidParams(`time_to_live must be a whole number of seconds from 1 to ${MAX_TIME_TO_LIVE_S}.`);
  const env = oneOffEnv(input.env ?? {});

  const { row, changes } = await ctx.db.transaction(async (tx) => {
    const release = await runningRelease(tx, app.id);
    if (!release?.slugId) throw invalidParams("This app has no release to run yet: deploy it first (git push heroku main).");
    // The size of the app's web dynos unless another is asked for, as on Heroku.
    const [web] = await tx
      .select({ size: formations.size })
      .from(formations)
      .where(and(eq(formations.appId, app.id), eq(formations.type, "web")));
    const size = input.size ? normalizeSize(input.size) : (web?.size ?? "Basic");
    const taken = new Set((await listDynos(tx, app.id)).map((d) => d.name));
    let name = "";
    for (let i = 0; i < 50 && (!name || taken.has(name)); i++) name = `run.${1000 + Math.floor(Math.random() * 9000)}`;
    if (taken.has(name)) throw invalidParams("Too many one-off dynos are running for this app.");
    const [row] = await tx
      .insert(dynos)
      .values({ appId: app.id, releaseId: release.id, name, type: "run", command, size, extraEnv: env, timeToLiveS: ttl })
      .returning();
    await placeDynos(tx);
    await recordAudit(tx, { actor, action: "dynos.run", app, details: { name, command }, requestId: ctx.requestId });
    const changes = noChanges();
    changes.start.push(row!.id);
    return { row: { ...row!, releaseVersion: release.version }, changes };
  });
  pushChanges(ctx, changes);
  logAppEvents(ctx, app.id, [`Starting process with command \`${command}\` by user ${actor.email}`]);
  return row;
}
