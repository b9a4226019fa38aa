import { and, asc, desc, eq, isNull, lt } from "drizzle-orm";
import { signToken } from "../../auth/signing.ts";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { type AppRow, hosts, type PgTransferRow, pgTransfers } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import type { TransferResult } from "../../protocol/transfer.ts";
import { findAppForActor } from "../apps/apps.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { sendCommand } from "../dynos/host-commands.ts";
import { emit } from "../events/outbox.ts";
import { type AddonView, addonCredentials, addonView, EXTENSION_RE, failProvisioning, planOf, providerFor, provisioned, serverCall } from "./addons.ts";
import { addExtensions, type DatabaseCredentials } from "./providers/postgres.ts";
import {
  abortDump,
  attachmentName,
  backupName,
  backupUrl,
  completeDump,
  discard,
  dispatch,
  endTransfer,
  insertTransfer,
  logLine,
  measure,
  TRANSFER_TIMEOUT_S,
} from "./transfers.ts";
import { finishFork } from "./copies.ts";

/**
 * PGBackups: `pg:backups:capture` and `restore`, the list and a transfer's info, download
 * URLs, delete and cancel, and what a host's report of a transfer ends in (src/protocol/transfer.ts).
 */

/** How long a backup's download URL (`pg:backups:url`, `pg:backups:download`) works. */
export const DOWNLOAD_URL_TTL_S = 10 * 60;

/** The backup a restore's `backup_url` names, if it is one of this platform's own. */
function backupIdFrom(apiHost: string, url: string): string | null {
  const prefix = `https://${apiHost}/client/v11/backups/`;
  if (!url.startsWith(prefix)) return null;
  const id = url.slice(prefix.length);
  return isUuid(id) ? id : null;
}

/** Fails what ran past its time limit without a report (its host died): a poll of it ends. */
async function expireStale(db: Database, env: Bindings, appId?: string, now = new Date()): Promise<number> {
  const deadline = new Date(now.getTime() - (TRANSFER_TIMEOUT_S + 60) * 1000);
  const stale = await db
    .select()
    .from(pgTransfers)
    .where(and(appId ? eq(pgTransfers.appId, appId) : undefined, isNull(pgTransfers.finishedAt), lt(pgTransfers.createdAt, deadline)))
    .limit(500);
  // Ended as a host's failed report ends them: an upload given up, a fresh database dropped, a fork's add-on failed.
  const lost: TransferResult = {
    succeeded: false,
    logs: [],
    processed_bytes: 0,
    warnings: 0,
    error: "The transfer did not report back in time: its host may have stopped.",
  };
  for (const t of stale) await finishTransfer(db, env, t, lost);
  return stale.length;
}

/** The scheduled run's sweep of transfers whose host never reported back (a poll of one ends, a fork's add-on fails). */
export async function expireStaleTransfers(db: Database, env: Bindings, now: Date): Promise<{ expired: number }> {
  return { expired: await expireStale(db, env, undefined, now) };
}

/** `pg:backups:capture`: a `pg_dump` of the database into the blob store, on a host. */
export async function captureBackup(ctx: ServiceContext, view: AddonView): Promise<PgTransferRow> {
  actingUser(ctx);
  return startBackup(ctx, view, false);
}

/** A backup by hand (`b001`) or by the database's daily schedule (`a001`, the platform acting). */
export async function startBackup(ctx: ServiceContext, view: AddonView, scheduled: boolean): Promise<PgTransferRow> {
  provisioned(view);
  const { sizeBytes, major } = await measure(ctx, view);
  const transfer = await insertTransfer(ctx.db, {
    appId: view.addon.appId,
    kind: "backup",
    addonId: view.addon.id,
    fromName: attachmentName(view),
    toName: "BACKUP",
    scheduled,
    sourceBytes: sizeBytes,
    logs: [logLine(`${scheduled ? "Scheduled backup" : "Backup"} of ${view.addon.name} requested`)],
  });
  await ctx.db.transaction((tx) =>
    emit(tx, ctx, { type: "addon.backup_captured", app: view.app, data: { name: view.addon.name, backup: backupName(transfer) } }),
  );
  return dispatch(ctx, transfer, view, "backup", major);
}

/**
 * `pg:backups:restore`: a backup of this platform's (named by its `to_url`, of an app the
 * caller can reach) `pg_restore`d into the database, after the extensions asked for are
 * made in it. A URL of anywhere else is refused: the platform fetches nothing it did not store.
 */
export async function restoreBackup(ctx: ServiceContext, view: AddonView, url: string, extensions: string[]): Promise<PgTransferRow> {
  const actor = actingUser(ctx);
  const resource = provisioned(view);
  const id = backupIdFrom(ctx.env.API_HOST, url);
  if (!id) throw invalidParams("Backups can be restored only from this platform's own backups (the to_url of one, as pg:backups:restore sends it).");
  const [backup] = await ctx.db
    .select()
    .from(pgTransfers)
    .where(and(eq(pgTransfers.id, id), eq(pgTransfers.kind, "backup"), isNull(pgTransfers.deletedAt)));
  // Someone else's backup is as absent as a missing one.
  const reachable = backup
    ? await findAppForActor(ctx.db, actor, backup.appId).then(
        () => true,
        () => false,
      )
    : false;
  if (!backup || !reachable) throw new ApiError("not_found", "Couldn't find that backup.", "backup");
  if (!backup.succeeded || !backup.blobKey) throw invalidParams(`Backup ${backupName(backup)} did not complete successfully.`);
  const wanted = [...new Set(extensions.map((e) => e.trim().toLowerCase()))].filter(Boolean);
  const bad = wanted.filter((e) => !EXTENSION_RE.test(e));
  if (bad.length) throw invalidParams(`Not an extension's name: ${bad.join(", ")}.`);
  const { major } = await measure(ctx, view);
  // The row first: it is what holds the database's one restore at a time (see pg_transfers_one_restore_key).
  const transfer = await insertTransfer(ctx.db, {
    appId: view.addon.appId,
    kind: "restore",
    addonId: view.addon.id,
    backupId: backup.id,
    fromName: backupName(backup),
    toName: attachmentName(view),
    sourceBytes: backup.processedBytes,
    logs: [logLine(`Restore of ${backupName(backup)} into ${view.addon.name} requested`)],
  });
  // Into a fresh database beside the add-on's: it takes the add-on's place only once the restore succeeded.
  const provider = providerFor(ctx.env);
  let creds: DatabaseCredentials;
  try {
    const own = await addonCredentials(ctx.db, view, ctx.env);
    creds = await serverCall(() => provider.prepareRestore(resource, planOf(view.addon), own));
    await serverCall(() => addExtensions(creds, wanted));
  } catch (err) {
    await provider.discardRestore(resource).catch(() => {});
    await endTransfer(ctx.db, transfer.id, { logs: [...transfer.logs, logLine(`Not started: ${(err as Error).message}`)] });
    throw err;
  }
  await ctx.db.transaction((tx) =>
    emit(tx, ctx, { type: "addon.backup_restored", app: view.app, data: { name: view.addon.name, backup: backupName(backup) } }),
  );
  const dispatched = await dispatch(ctx, transfer, view, "restore", major, { database: creds });
  if (dispatched.finishedAt) await provider.discardRestore(resource).catch(() => {});
  return dispatched;
}

/** The app a `/client/v11/apps/{app}` path names, if the caller can reach it. */
async function transfersApp(ctx: ServiceContext, idOrName: string): Promise<AppRow> {
  const app = await findAppForActor(ctx.db, actingUser(ctx), idOrName);
  await expireStale(ctx.db, ctx.env, app.id);
  return app;
}

/** `pg:backups`: an app's transfers (of the databases it owns), oldest first. */
export async function listTransfers(ctx: ServiceContext, appIdOrName: string): Promise<PgTransferRow[]> {
  const app = await transfersApp(ctx, appIdOrName);
  return ctx.db
    .select()
    .from(pgTransfers)
    .where(and(eq(pgTransfers.appId, app.id), isNull(pgTransfers.deletedAt)))
    .orderBy(asc(pgTransfers.num));
}

/** One of an app's transfers, by its number (`3` for `b003`) or its uuid. */
export async function getTransfer(ctx: ServiceContext, appIdOrName: string, numOrId: string): Promise<PgTransferRow> {
  const app = await transfersApp(ctx, appIdOrName);
  const which = isUuid(numOrId) ? eq(pgTransfers.id, numOrId) : /^\d{1,9}$/.test(numOrId) ? eq(pgTransfers.num, Number(numOrId)) : null;
  const [row] = which
    ? await ctx.db
        .select()
        .from(pgTransfers)
        .where(and(eq(pgTransfers.appId, app.id), which, isNull(pgTransfers.deletedAt)))
    : [];
  if (!row) throw new ApiError("not_found", `Couldn't find transfer ${numOrId} of ${app.name}.`, "transfer");
  return row;
}

/** `pg:backups:delete`: the backup's dump is deleted; the transfer leaves every list. */
export async function deleteBackup(ctx: ServiceContext, appIdOrName: string, numOrId: string): Promise<PgTransferRow> {
  const t = await getTransfer(ctx, appIdOrName, numOrId);
  if (t.kind !== "backup") throw invalidParams(`${backupName(t)} is a restore, not a backup.`);
  if (!t.finishedAt) throw invalidParams(`Backup ${backupName(t)} is still running; cancel it first (pg:backups:cancel).`);
  await discard(ctx.db, ctx.env.BLOBS, t);
  return t;
}

/** `pg:backups:cancel`: ends the transfer now (a poll of it ends) and tells its host to stop. */
export async function cancelTransfer(ctx: ServiceContext, appIdOrName: string, numOrId: string): Promise<PgTransferRow> {
  const t = await getTransfer(ctx, appIdOrName, numOrId);
  const now = new Date();
  const ended = await endTransfer(ctx.db, t.id, { canceledAt: now, logs: [...t.logs, logLine("Canceled")] });
  if (!ended) throw invalidParams(`${backupName(t)} has already finished.`);
  if (t.kind !== "backup" && !t.forkAddonId) await discardStaging(ctx.db, ctx.env, t);
  if (t.forkAddonId) {
    // A fork whose copy is cancelled is not to be: its add-on fails and its database goes.
    const fork = await addonView(ctx.db, t.forkAddonId);
    if (fork?.addon.state === "provisioning") {
      await failProvisioning(
        ctx.db,
        ctx.env,
        fork.addon,
        fork.app,
        actingUser(ctx),
        "its data could not be copied",
        "the copy was canceled",
        providerFor(ctx.env),
      );
    }
  }
  if (t.kind === "backup") await abortDump(ctx.env.BLOBS, t);
  const [host] = t.hostId ? await ctx.db.select({ id: hosts.id, url: hosts.url }).from(hosts).where(eq(hosts.id, t.hostId)) : [];
  if (host?.url) await sendCommand(ctx.env.COMMAND_SIGNING_KEY, host.id, host.url, { op: "cancel_transfer", transfer_id: t.id });
  return ended;
}

/** `pg:backups:url`: a signed download URL of a finished backup, good for DOWNLOAD_URL_TTL_S. */
export async function backupDownloadUrl(ctx: ServiceContext, appIdOrName: string, numOrId: string): Promise<{ url: string; expiresAt: Date }> {
  const t = await getTransfer(ctx, appIdOrName, numOrId);
  if (t.kind !== "backup" || !t.succeeded || !t.blobKey) throw invalidParams(`${backupName(t)} is not a completed backup.`);
  const token = await signToken(ctx.env.COMMAND_SIGNING_KEY, { purpose: "backup-download", audience: t.id, ttlSeconds: DOWNLOAD_URL_TTL_S });
  return { url: `${backupUrl(ctx.env.API_HOST, t.id)}/dump?token=${token}`, expiresAt: new Date(Date.now() + DOWNLOAD_URL_TTL_S * 1000) };
}

/** A backup's dump for its signed URL; not found once deleted. */
export async function backupDump(db: Database, blobs: R2Bucket, id: string): Promise<R2ObjectBody> {
  const [t] = await db
    .select()
    .from(pgTransfers)
    .where(and(eq(pgTransfers.id, id), isNull(pgTransfers.deletedAt)));
  const object = t?.blobKey ? await blobs.get(t.blobKey) : null;
  if (!object) throw new ApiError("not_found", "Couldn't find that backup.", "backup");
  return object;
}

/** A running restore's dump (its backup's), for its host. */
export async function restoreDump(db: Database, blobs: R2Bucket, t: PgTransferRow): Promise<R2ObjectBody> {
  if (t.kind !== "restore" || t.finishedAt || !t.backupId) throw new ApiError("conflict", "This transfer reads no dump now.");
  return backupDump(db, blobs, t.backupId);
}

/** Drops a restore's fresh database (it failed, or was cancelled): the add-on's own stays as it was. */
async function discardStaging(db: Database, env: Bindings, t: PgTransferRow): Promise<void> {
  const view = t.addonId ? await addonView(db, t.addonId) : null;
  if (view?.addon.providerId)
    await providerFor(env)
      .discardRestore(view.addon.providerId)
      .catch(() => {});
}

/**
 * A host's report of a transfer: it ends with the tool's log lines (after the platform's
 * own). A restore that succeeded puts its fresh database in the add-on's place now; one that
 * failed leaves the add-on's database as it was. A report of one already ended (canceled,
 * expired) changes nothing, and a dump it stored is deleted. A finished backup expires the
 * oldest of its kind past its plan's number (the plan's `backups`; the app's backups of
 * every database it owns count together, as Heroku counts them per app).
 */
export async function finishTransfer(db: Database, env: Bindings, reported: PgTransferRow, result: TransferResult): Promise<void> {
  if (reported.forkAddonId) return finishFork(db, env, reported, result);
  const blobs = env.BLOBS;
  // Under the row's lock: a cancel (or the expiry sweep) waits for this, or this finds the transfer ended and leaves it.
  const outcome = await db.transaction(async (tx) => {
    const [t] = await tx.select().from(pgTransfers).where(eq(pgTransfers.id, reported.id)).for("update");
    if (!t || t.finishedAt) return null;
    let ok = result.succeeded;
    let error = result.error ?? "The transfer failed.";
    const view = t.addonId ? await addonView(tx, t.addonId) : null;
    if (t.kind === "backup") {
      if (ok) {
        try {
          await completeDump(tx, blobs, t);
        } catch (err) {
          ok = false;
          error = `The dump could not be stored: ${(err as Error).message}`;
        }
      }
      if (!ok) await abortDump(blobs, t);
    } else {
      if (ok && view?.addon.providerId) {
        try {
          await providerFor(env).finishRestore(view.addon.providerId);
        } catch (err) {
          ok = false;
          error = `The restored database could not take the place of ${view.addon.name}: ${(err as Error).message}`;
        }
      } else ok = false;
      if (!ok) await discardStaging(tx, env, t);
    }
    const logs = [
      ...t.logs,
      ...result.logs.map((l) => logLine(l.message, l.at)),
      ...(ok ? [] : [logLine(error)]),
      ...(ok && t.kind !== "backup" ? [logLine(`The restored database took the place of ${view?.addon.name ?? "the add-on's"}`)] : []),
    ];
    await endTransfer(tx, t.id, { succeeded: ok, logs, warnings: result.warnings, processedBytes: result.processed_bytes });
    return { t, ok, view };
  });
  if (!outcome) {
    // Reported after it ended: an upload the cancel came too early to give up goes now.
    const [t] = reported.kind === "backup" ? await db.select().from(pgTransfers).where(eq(pgTransfers.id, reported.id)) : [];
    if (t && !t.blobKey) await abortDump(blobs, t);
    return;
  }
  const { t, ok, view } = outcome;
  // The database a restore replaced goes once the restore has been answered for.
  if (ok && t.kind !== "backup" && view?.addon.providerId) {
    await providerFor(env)
      .dropReplaced?.(view.addon.providerId)
      .catch((err: Error) => console.error(JSON.stringify({ transfer: t.id, drop_replaced_failed: err.message })));
  }
  if (ok && t.kind === "backup") {
    const kept = view ? planOf(view.addon).backups : { manual: 5, scheduled: 7 };
    const keep = t.scheduled ? kept.scheduled : kept.manual;
    const backups = await db
      .select()
      .from(pgTransfers)
      .where(
        and(
          eq(pgTransfers.appId, t.appId),
          eq(pgTransfers.kind, "backup"),
          eq(pgTransfers.scheduled, t.scheduled),
          eq(pgTransfers.succeeded, true),
          isNull(pgTransfers.deletedAt),
        ),
      )
      .orderBy(desc(pgTransfers.num));
    // A backup a running restore is reading waits for the next expiry.
    const reading = new Set(
      (
        await db
          .select({ id: pgTransfers.backupId })
          .from(pgTransfers)
          .where(and(eq(pgTransfers.kind, "restore"), isNull(pgTransfers.finishedAt)))
      ).map((r) => r.id),
    );
    for (const old of backups.slice(keep)) if (!reading.has(old.id)) await discard(db, blobs, old);
  }
}
