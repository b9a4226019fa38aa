import { checkOneOffLimits } from "../access/account-limits.ts";
import { and, eq } from "drizzle-orm";
import { signToken } from "../../auth/signing.ts";
import type { Database } from "../../db/client.ts";
import { type AppRow, dynos, formations, hosts } from "../../db/schema/index.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { CONFIG_KEY_RE, CONFIG_LIMIT_BYTES } from "../apps/config-vars.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";
import { noChanges, runningRelease } from "./dynos.ts";
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
/** How long the client of an attached dyno has to connect (the agent's wait is the same). */
const RENDEZVOUS_TOKEN_TTL_S = 60;
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
 * Starts a one-off dyno: `run.N` (N random, four digits, as on Heroku) from the current
 * release's slug with the app's config plus `env`, placed on a host like any dyno and
 * counted against its memory. Detached (`heroku run:detached`), its output goes to the app's
 * log as `app[run.N]`. Attached (`heroku run`), it waits for its client at the host's
 * rendezvous server: `attach_url` carries a token only that dyno takes, once, within a
 * minute; under a pseudo-terminal when the client has one (it sends its size) and did not
 * ask for `force_no_tty`, on plain pipes otherwise. Either way `heroku[run.N]` state lines
 * go to the log, and it ends when its command does, when its client leaves, on
 * `heroku ps:stop run.N`, or after `time_to_live` seconds. A stopped (scaled to zero) app
 * still runs one-off dynos.
 */
export async function runOneOffDyno(ctx: ServiceContext, app: AppRow, input: OneOffInput) {
  actingUser(ctx); // a person runs it, never the platform
  const command = input.command.trim();
  if (!command) throw invalidParams("A one-off dyno needs a command.");
  if (new TextEncoder().encode(command).length > MAX_COMMAND_BYTES || command.includes("\u0000")) throw invalidParams("That command is too long or not text.");
  if ((input.type ?? "run") !== "run") throw invalidParams(`One-off dynos are of type run (got ${JSON.stringify(input.type)}).`);
  const ttl = input.time_to_live ?? MAX_TIME_TO_LIVE_S;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TIME_TO_LIVE_S)
    throw invalidParams(`time_to_live must be a whole number of seconds from 1 to ${MAX_TIME_TO_LIVE_S}.`);
  const env = oneOffEnv(input.env ?? {});
  const attach = input.attach ? (!input.force_no_tty && ("COLUMNS" in env || "LINES" in env) ? "tty" : "pipes") : null;

  const { row, rendezvous } = await ctx.db.transaction(async (tx) => {
    const release = await runningRelease(tx, app.id);
    if (!release?.slugId) throw invalidParams("This app has no release to run yet: deploy it first (git push heroku main).");
    const { name, webSize } = await oneOffSlot(tx, app.id, "run");
    const size = input.size ? normalizeSize(input.size) : webSize;
    const [row] = await tx
      .insert(dynos)
      .values({ appId: app.id, releaseId: release.id, name, type: "run", command, size, extraEnv: env, timeToLiveS: ttl, attach })
      .returning();
    await checkOneOffLimits(tx, ctx.env, app);
    await placeDynos(tx);
    const rendezvous = attach ? await rendezvousOf(tx, row!.id) : null;
    const changes = noChanges();
    changes.start.push(row!.id);
    await emit(tx, ctx, { type: "dyno.run", app, data: { name, command }, dynos: changes });
    return { row: { ...row!, releaseVersion: release.version }, rendezvous };
  });
  const attachUrl = rendezvous
    ? `rendezvous://${rendezvous.address}/${await signToken(ctx.env.COMMAND_SIGNING_KEY, {
        purpose: "rendezvous",
        audience: rendezvous.hostId,
        subject: row.id,
        ttlSeconds: RENDEZVOUS_TOKEN_TTL_S,
      })}`
    : null;
  return { ...row, attachUrl };
}

/**
 * A free name for a new one-off dyno of `type` (`run.NNNN`, four random digits as on Heroku)
 * and the size of the app's web dynos, which one-off dynos get unless another is asked for.
 */
export async function oneOffSlot(tx: Database, appId: string, type: string): Promise<{ name: string; webSize: string }> {
  const [web] = await tx
    .select({ size: formations.size })
    .from(formations)
    .where(and(eq(formations.appId, appId), eq(formations.type, "web")));
  const taken = new Set((await tx.select({ name: dynos.name }).from(dynos).where(eq(dynos.appId, appId))).map((d) => d.name));
  let name = "";
  for (let i = 0; i < 50 && (!name || taken.has(name)); i++) name = `${type}.${1000 + Math.floor(Math.random() * 9000)}`;
  if (taken.has(name)) throw invalidParams("Too many one-off dynos are running for this app.");
  return { name, webSize: web?.size ?? "Basic" };
}

/**
 * Where the client of an attached dyno connects: its host's rendezvous server. Refused
 * (rolling the dyno back) when no host has room for it now, or its host runs no such server.
 */
async function rendezvousOf(tx: Database, dynoId: string) {
  const [placed] = await tx
    .select({ hostId: hosts.id, address: hosts.rendezvous })
    .from(dynos)
    .innerJoin(hosts, eq(hosts.id, dynos.hostId))
    .where(eq(dynos.id, dynoId));
  if (!placed) throw new ApiError("unavailable", "No host has room for this dyno right now; try again shortly, or `heroku run:detached`.");
  if (!placed.address) {
    throw new ApiError(
      "unavailable",
      "The host this dyno was placed on takes no attached sessions (it has no rendezvous certificate); `heroku run:detached` runs the command with its output in the app's logs.",
    );
  }
  return { hostId: placed.hostId, address: placed.address };
}
