import { eq } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { accounts, type AppRow, type PgTransferRow } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { invalidParams } from "../../errors.ts";
import type { TransferResult } from "../../protocol/transfer.ts";
import { findAppForActor } from "../apps/apps.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";
import {
  type AddonView,
  addonCredentials,
  addonView,
  attachProvisioned,
  createAddon,
  currentUrl,
  failProvisioning,
  findAddon,
  listAddonsForActor,
  type NewAddon,
  planOf,
  providerFor,
  provisioned,
  serverCall,
} from "./addons.ts";
import { POSTGRES } from "./catalog.ts";
import type { DatabaseCredentials } from "./providers/postgres.ts";
import { attachmentName, backupName, dispatch, endTransfer, insertTransfer, logLine, measure } from "./transfers.ts";

/**
 * One database's data into another: `pg:copy`, and the copy that fills a fork
 * (`addons:create -- --fork`). Both databases are the caller's own on this platform.
 */

/**
 * The database a `postgres://` URL names, among those the caller can reach (`pg:copy` sends
 * URLs): its current URL must be the one given. Any other URL, of anywhere, names nothing:
 * the platform connects to no database a tenant names by address.
 */
async function databaseByUrl(ctx: ServiceContext, url: string): Promise<AddonView | null> {
  const actor = actingUser(ctx);
  for (const view of await listAddonsForActor(ctx.db, actor)) {
    if (view.addon.service !== POSTGRES.name || view.addon.state !== "provisioned") continue;
    if ((await currentUrl(ctx.db, view).catch(() => null)) === url) return view;
  }
  return null;
}

/**
 * `pg:copy SOURCE TARGET --confirm APP`: the source's `pg_dump` restored (on a host, as the
 * target's restore role) into a fresh database that takes the target's place once it
 * succeeded. Both must be databases of this platform the caller can reach, given by their
 * current URLs, and the target the one the path names.
 */
export async function copyDatabase(
  ctx: ServiceContext,
  target: AddonView,
  input: { from_name?: string; from_url: string; to_name?: string; to_url: string },
): Promise<PgTransferRow> {
  const resource = provisioned(target);
  const [source, into] = [await databaseByUrl(ctx, input.from_url), await databaseByUrl(ctx, input.to_url)];
  if (!source || !into) throw invalidParams("pg:copy copies only between this platform's databases that you can reach, named by their current URLs.");
  if (into.addon.id !== target.addon.id) throw invalidParams(`pg:copy copies into ${target.addon.name}, the database it was asked of.`);
  if (source.addon.id === target.addon.id) throw invalidParams("Cannot copy a database onto itself.");
  const major = Math.max((await measure(ctx, source)).major, (await measure(ctx, target)).major);
  // The row first: it is what holds the database's one restore or copy at a time.
  const transfer = await insertTransfer(ctx.db, {
    appId: target.addon.appId,
    kind: "copy",
    addonId: target.addon.id,
    fromName: (input.from_name ?? attachmentName(source)).slice(0, 255),
    toName: (input.to_name ?? attachmentName(target)).slice(0, 255),
    sourceBytes: (await measure(ctx, source)).sizeBytes,
    accountId: actingUser(ctx).accountId,
    logs: [logLine(`Copy of ${source.addon.name} into ${target.addon.name} requested`)],
  });
  const provider = providerFor(ctx.env);
  let staging: DatabaseCredentials;
  try {
    const own = await addonCredentials(ctx.db, target, ctx.env);
    staging = await serverCall(() => provider.prepareRestore(resource, planOf(target.addon), own));
  } catch (err) {
    await endTransfer(ctx.db, transfer.id, { logs: [...transfer.logs, logLine(`Not started: ${(err as Error).message}`)] });
    throw err;
  }
  await ctx.db.transaction((tx) =>
    emit(tx, ctx, { type: "addon.copied", app: target.app, data: { name: target.addon.name, from: source.addon.name, copy: backupName(transfer) } }),
  );
  const dispatched = await dispatch(ctx, transfer, target, "copy", major, { database: staging, source: await addonCredentials(ctx.db, source, ctx.env) });
  if (dispatched.finishedAt) await provider.discardRestore(resource).catch(() => {});
  return dispatched;
}

/**
 * The database `--fork REF` names: an attachment of the app (`DATABASE`, `DATABASE_URL`,
 * `HEROKU_POSTGRESQL_RED_URL`), of another app the caller can reach (`APP::DATABASE`), or
 * an add-on by name the caller can see.
 */
async function forkSource(ctx: ServiceContext, app: AppRow, ref: string): Promise<AddonView> {
  const actor = actingUser(ctx);
  const [appRef, name] = ref.includes("::") ? (ref.split("::", 2) as [string, string]) : [null, ref];
  const where = appRef ? await findAppForActor(ctx.db, actor, appRef) : app;
  const view = await findAddon(ctx.db, actor, name, where).catch(() => findAddon(ctx.db, actor, name));
  if (view.addon.service !== POSTGRES.name || view.addon.state !== "provisioned")
    throw invalidParams(`${view.addon.name} is not a provisioned database to fork.`);
  return view;
}

/**
 * `addons:create heroku-postgresql:PLAN -- --fork DATABASE`: a new database with the data of
 * another as it is now. The add-on is `provisioning` until a host has copied the data into
 * it (a `c001` copy in `pg:backups`), then attached as any new one; a copy that fails fails
 * the add-on, with the reason, and drops its database.
 */
export async function createFork(ctx: ServiceContext, app: AppRow, input: NewAddon & { config: { fork: string } }) {
  const from = await forkSource(ctx, app, input.config.fork);
  const { major, sizeBytes } = await measure(ctx, from);
  return createAddon(ctx, app, input, {
    from,
    fill: async (db, env, addon, creds, attachment, actor) => {
      const source = await addonView(db, from.addon.id);
      if (source?.addon.state !== "provisioned") throw new Error(`${from.addon.name} is gone`);
      const view = (await addonView(db, addon.id))!;
      const transfer = await insertTransfer(db, {
        appId: addon.appId,
        kind: "copy",
        addonId: addon.id,
        forkAddonId: addon.id,
        fromName: attachmentName(source),
        toName: attachment,
        sourceBytes: sizeBytes,
        accountId: actor.accountId,
        logs: [logLine(`Fork of ${source.addon.name} into ${addon.name} requested`)],
      });
      const dispatched = await dispatch({ db, env }, transfer, view, "copy", major, { database: creds, source: await addonCredentials(db, source, env) });
      if (dispatched.finishedAt) throw new Error(dispatched.logs.at(-1)?.message ?? "no host took the copy");
    },
  });
}

/**
 * A fork's copy ended: the new add-on is attached with fresh credentials (the copy's are
 * retired with its sessions), or failed with the reason and its database dropped.
 */
export async function finishFork(db: Database, env: Bindings, t: PgTransferRow, result: TransferResult): Promise<void> {
  const ok = result.succeeded;
  const logs = [...t.logs, ...result.logs.map((l) => logLine(l.message, l.at)), ...(ok ? [] : [logLine(result.error ?? "The copy failed.")])];
  const ended = await endTransfer(db, t.id, { succeeded: ok, logs, warnings: result.warnings, processedBytes: result.processed_bytes });
  const view = t.forkAddonId ? await addonView(db, t.forkAddonId) : null;
  if (!ended || view?.addon.state !== "provisioning") return;
  const [account] = t.accountId ? await db.select({ accountId: accounts.id, email: accounts.email }).from(accounts).where(eq(accounts.id, t.accountId)) : [];
  const actor = account ?? { accountId: view.app.ownerId, email: "" };
  const provider = providerFor(env);
  if (!ok) {
    await failProvisioning(db, env, view.addon, view.app, actor, "its data could not be copied", result.error ?? "the copy failed", provider);
    return;
  }
  try {
    const creds = await provider.rotate(view.addon.providerId!);
    await attachProvisioned(db, env, provider, view.addon, view.app, t.toName, creds, actor, null);
  } catch (err) {
    await failProvisioning(db, env, view.addon, view.app, actor, "it could not be attached", (err as Error).message.slice(0, 300), provider);
  }
}
