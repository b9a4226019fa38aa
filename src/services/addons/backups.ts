import { and, asc, desc, eq, isNull, lt, ne, or, sql } from "drizzle-orm";
import { signToken } from "../../auth/signing.ts";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import {
  accounts,
  type AppRow,
  hosts,
  type PgBackupScheduleRow,
  pgBackupSchedules,
  type PgTransferRow,
  pgTransfers,
  type TransferLog,
} from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { DUMP_PART_BYTES, type TransferResult, type TransferSpec } from "../../protocol/transfer.ts";
import { findAppForActor } from "../apps/apps.ts";
import { chooseBuildHost } from "../builds/builds.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { sendCommand } from "../dynos/host-commands.ts";
import { emit } from "../events/outbox.ts";
import {
  type AddonView,
  addonCredentials,
  addonView,
  attachProvisioned,
  createAddon,
  currentUrl,
  EXTENSION_RE,
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
import { addExtensions, type DatabaseCredentials } from "./providers/postgres.ts";

/** How long a transfer may run before it counts as failed (the agent ends it then too). */
export const TRANSFER_TIMEOUT_S = 60 * 60;

/** How long a backup's download URL (`pg:backups:url`, `pg:backups:download`) works. */
export const DOWNLOAD_URL_TTL_S = 10 * 60;

/** A dump is never larger than this, whatever the plan. */
const MAX_DUMP_BYTES = 20 * 1024 ** 3;

/** A transfer as the data API shows it (Heroku's transfer object, what `pg:backups*` reads). */
export function transferJson(t: PgTransferRow, apiHost: string, verbose = false) {
  const time = (d: Date | null) => (d ? herokuTime(d) : null);
  const backup = t.kind === "backup";
  return {
    uuid: t.id,
    num: t.num,
    from_name: t.fromName,
    // A copy reads a database as a backup does (`c001`); a restore reads a backup.
    from_type: t.kind === "restore" ? "gof3r" : "pg_dump",
    from_url: null,
    to_name: t.toName,
    to_type: backup ? "gof3r" : "pg_restore",
    to_url: backup ? backupUrl(apiHost, t.id) : null,
    options: {},
    source_bytes: t.sourceBytes,
    processed_bytes: t.processedBytes,
    succeeded: t.succeeded,
    warnings: t.warnings,
    schedule: t.scheduled ? { uuid: null } : null,
    created_at: herokuTime(t.createdAt),
    started_at: time(t.startedAt),
    finished_at: time(t.finishedAt),
    canceled_at: time(t.canceledAt),
    updated_at: herokuTime(t.updatedAt),
    deleted_at: null,
    purged_at: null,
    ...(verbose ? { logs: t.logs } : {}),
  };
}

/** Heroku's transfer time format, `2024-01-31 12:00:00 +0000` (sorts as text). */
const herokuTime = (d: Date) => `${d.toISOString().slice(0, 19).replace("T", " ")} +0000`;

/** What names a backup for a restore (`to_url`): not a download (that takes a signed URL), only the backup's address. */
export const backupUrl = (apiHost: string, id: string) => `https://${apiHost}/client/v11/backups/${id}`;

/** The backup a restore's `backup_url` names, if it is one of this platform's own. */
function backupIdFrom(apiHost: string, url: string): string | null {
  const prefix = `https://${apiHost}/client/v11/backups/`;
  if (!url.startsWith(prefix)) return null;
  const id = url.slice(prefix.length);
  return isUuid(id) ? id : null;
}

/** The attachment name a database goes by on its own app (`DATABASE`), for the transfer's names. */
function attachmentName(view: AddonView): string {
  const own = view.attachments.filter((a) => a.app.id === view.addon.appId).map((a) => a.attachment.name);
  return own.find((n) => n === "DATABASE") ?? own[0] ?? view.addon.color;
}

/** A line for a transfer's log. */
const logLine = (message: string, at = Date.now()): TransferLog => ({ created_at: herokuTime(new Date(at)), message });

/** Inserts a transfer with the app's next number (one sequence for backups and restores, as `b001`, `r002`). */
async function insertTransfer(db: Database, row: Omit<typeof pgTransfers.$inferInsert, "num">): Promise<PgTransferRow> {
  for (let attempt = 0; ; attempt++) {
    try {
      const [inserted] = await db
        .insert(pgTransfers)
        .values({ ...row, num: sql`(select coalesce(max(${pgTransfers.num}), 0) + 1 from ${pgTransfers} where ${pgTransfers.appId} = ${row.appId})` })
        .returning();
      return inserted!;
    } catch (err) {
      const said = String((err as Error).message) + String((err as { cause?: Error }).cause?.message);
      // Two at once took the same number: the unique index refused the second; it takes the next.
      if (attempt < 3 && /pg_transfers_app_num_key/.test(said)) continue;
      if (/pg_transfers_one_restore_key/.test(said)) throw new ApiError("conflict", "A restore or copy into this database is running already.");
      throw err;
    }
  }
}

/** Ends a transfer that has not (yet) ended; returns the row as it is now. */
async function endTransfer(db: Database, id: string, set: Partial<typeof pgTransfers.$inferInsert>): Promise<PgTransferRow | null> {
  const [row] = await db
    .update(pgTransfers)
    .set({ ...set, finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(pgTransfers.id, id), isNull(pgTransfers.finishedAt)))
    .returning();
  return row ?? null;
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

/**
 * Gives a transfer to the host with the most free memory: the signed `transfer` command
 * with the database's own credentials. A transfer no host takes fails at once.
 */
async function dispatch(
  ctx: Pick<ServiceContext, "db" | "env">,
  transfer: PgTransferRow,
  view: AddonView,
  kind: TransferSpec["kind"],
  pgMajor: number,
  dbs: { database?: DatabaseCredentials; source?: DatabaseCredentials } = {},
): Promise<PgTransferRow> {
  const fail = async (message: string) => (await endTransfer(ctx.db, transfer.id, { logs: [...transfer.logs, logLine(message)] })) ?? transfer;
  const host = await chooseBuildHost(ctx.db);
  if (!host) return fail("No host is available to run the transfer right now; try again shortly.");
  const creds = dbs.database ?? (await addonCredentials(ctx.db, view, ctx.env));
  const [started] = await ctx.db
    .update(pgTransfers)
    .set({ hostId: host.id, startedAt: new Date(), updatedAt: new Date() })
    .where(eq(pgTransfers.id, transfer.id))
    .returning();
  const plan = planOf(view.addon);
  const spec: TransferSpec = {
    id: transfer.id,
    app_id: view.addon.appId,
    kind,
    database: creds,
    ...(dbs.source ? { source: dbs.source } : {}),
    pg_major: pgMajor,
    timeout_s: TRANSFER_TIMEOUT_S,
    max_bytes: Math.min(MAX_DUMP_BYTES, Math.max(64, plan.storageMb * 2) * 1024 * 1024),
  };
  if (!(await sendCommand(ctx.env.COMMAND_SIGNING_KEY, host.id, host.url, { op: "transfer", transfer: spec }))) {
    return fail("The host for the transfer could not be reached; try again shortly.");
  }
  return started!;
}

/** The server's size and major version of a database, for the transfer's figures and its tools. */
async function measure(ctx: Pick<ServiceContext, "db" | "env">, view: AddonView): Promise<{ sizeBytes: number; major: number }> {
  const creds = await addonCredentials(ctx.db, view, ctx.env);
  const stats = await serverCall(() => providerFor(ctx.env).stats(provisioned(view), creds));
  const major = Number(/^(\d+)/.exec(stats.version)?.[1]);
  if (!Number.isInteger(major)) throw new ApiError("unavailable", `Could not tell the database server's version (${stats.version}).`);
  return { sizeBytes: stats.sizeBytes, major };
}

/** `pg:backups:capture`: a `pg_dump` of the database into the blob store, on a host. */
export async function captureBackup(ctx: ServiceContext, view: AddonView): Promise<PgTransferRow> {
  actingUser(ctx);
  return startBackup(ctx, view, false);
}

/** A backup by hand (`b001`) or by the database's daily schedule (`a001`, the platform acting). */
async function startBackup(ctx: ServiceContext, view: AddonView, scheduled: boolean): Promise<PgTransferRow> {
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

/** `b001`, `a002`, `r003`, `c004`: the CLI's name of a transfer. */
export const backupName = (t: Pick<PgTransferRow, "kind" | "scheduled" | "num">) =>
  `${t.kind === "restore" ? "r" : t.kind === "copy" ? "c" : t.scheduled ? "a" : "b"}${String(t.num).padStart(3, "0")}`;

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

/** Deletes a backup's dump and marks it deleted. */
async function discard(db: Database, blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  await db.update(pgTransfers).set({ deletedAt: new Date(), updatedAt: new Date() }).where(eq(pgTransfers.id, t.id));
  if (t.blobKey) await blobs.delete(t.blobKey);
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

/** A transfer given to `hostId`, for its host calls; anything else is not found. */
export async function assignedTransfer(db: Database, id: string, hostId: string): Promise<PgTransferRow> {
  const [t] = isUuid(id)
    ? await db
        .select()
        .from(pgTransfers)
        .where(and(eq(pgTransfers.id, id), eq(pgTransfers.hostId, hostId)))
    : [];
  if (!t) throw new ApiError("not_found", "Couldn't find that transfer.", "transfer");
  return t;
}

/** The blob key of a backup's dump. */
const dumpKey = (t: PgTransferRow) => `backups/${t.appId}/${t.id}.dump`;

/**
 * Stores part `n` (from 1, in order) of a running backup's dump, streamed into the blob
 * store's multipart upload as pg_dump writes it; the result (finishTransfer) completes it.
 */
export async function storeDumpPart(
  db: Database,
  blobs: R2Bucket,
  t: PgTransferRow,
  n: number,
  body: ReadableStream<Uint8Array>,
  length: number,
): Promise<void> {
  if (t.kind !== "backup" || t.finishedAt) throw new ApiError("conflict", "This transfer takes no dump now.");
  if (n !== t.uploadedParts.length + 1) throw new ApiError("conflict", `Part ${t.uploadedParts.length + 1} comes next.`);
  if (length > DUMP_PART_BYTES || (n - 1) * DUMP_PART_BYTES + length > MAX_DUMP_BYTES) throw new ApiError("payload_too_large", "The part is too large.");
  const upload = t.uploadId ? blobs.resumeMultipartUpload(dumpKey(t), t.uploadId) : await blobs.createMultipartUpload(dumpKey(t));
  const part = await upload.uploadPart(n, body.pipeThrough(new FixedLengthStream(length)));
  const [kept] = await db
    .update(pgTransfers)
    .set({
      uploadId: upload.uploadId,
      uploadedParts: sql`${pgTransfers.uploadedParts} || ${JSON.stringify([{ partNumber: part.partNumber, etag: part.etag }])}::jsonb`,
      updatedAt: new Date(),
    })
    .where(and(eq(pgTransfers.id, t.id), isNull(pgTransfers.finishedAt)))
    .returning({ id: pgTransfers.id });
  if (!kept) {
    // Cancelled while the part uploaded: the upload goes with it.
    await upload.abort().catch(() => {});
    throw new ApiError("conflict", "This transfer takes no dump now.");
  }
}

/** Completes a backup's upload (its dump is then stored whole), or throws why it could not. */
async function completeDump(db: Database, blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  if (!t.uploadId || !t.uploadedParts.length) throw new Error("The host uploaded no dump.");
  await blobs.resumeMultipartUpload(dumpKey(t), t.uploadId).complete(t.uploadedParts);
  await db
    .update(pgTransfers)
    .set({ blobKey: dumpKey(t), uploadId: null, updatedAt: new Date() })
    .where(eq(pgTransfers.id, t.id));
  t.blobKey = dumpKey(t);
}

/** Gives up a backup's unfinished upload (the parts stored so far are deleted). */
async function abortDump(blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  if (t.uploadId)
    await blobs
      .resumeMultipartUpload(dumpKey(t), t.uploadId)
      .abort()
      .catch(() => {});
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

/** The day (`YYYY-MM-DD`) and hour (0–23) it is in `timeZone` at `at`. */
export function localTime(timeZone: string, at: Date): { day: string; hour: number } {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const part = (type: string) => parts.find((p) => p.type === type)!.value;
  return { day: `${part("year")}-${part("month")}-${part("day")}`, hour: Number(part("hour")) };
}

/** Whether `timeZone` is one the runtime knows (an IANA name such as `Europe/Istanbul`, or `UTC`). */
export function knownTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
    return true;
  } catch {
    return false;
  }
}

/** A schedule as `pg:backups:schedules` reads it. */
export function scheduleJson(s: PgBackupScheduleRow) {
  return { uuid: s.id, name: s.name, hour: s.hour, timezone: s.timezone, days: DAYS, retain_weeks: 0, retain_months: 0, created_at: herokuTime(s.createdAt) };
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/**
 * `pg:backups:schedule --at 'HH:00 TZ'`: the database is backed up daily at that hour (one
 * schedule per database; a new one replaces it). A schedule made after its hour of the day
 * first runs the next day.
 */
export async function scheduleBackups(
  ctx: ServiceContext,
  view: AddonView,
  input: { hour: string | number; timezone?: string; schedule_name?: string },
  now = new Date(),
): Promise<PgBackupScheduleRow> {
  actingUser(ctx);
  provisioned(view);
  const hour = typeof input.hour === "number" ? input.hour : /^\d{1,2}$/.test(input.hour) ? Number(input.hour) : Number.NaN;
  if (!Number.isInteger(hour) || hour < 0 || hour > 23) throw invalidParams("hour must be a whole hour of the day, 0 to 23.");
  const timezone = input.timezone?.trim() || "UTC";
  if (!knownTimeZone(timezone)) throw invalidParams(`Unknown time zone: ${timezone}. Use an IANA name such as Europe/Istanbul or America/New_York.`);
  const name = input.schedule_name?.trim() || `${attachmentName(view)}_URL`;
  if (!/^[A-Z][A-Z0-9_]{0,62}$/.test(name)) throw invalidParams(`Not a config var's name: ${name}.`);
  const local = localTime(timezone, now);
  const values = { addonId: view.addon.id, name, hour, timezone, lastDay: local.hour >= hour ? local.day : null, updatedAt: now };
  const [row] = await ctx.db.insert(pgBackupSchedules).values(values).onConflictDoUpdate({ target: pgBackupSchedules.addonId, set: values }).returning();
  return row!;
}

/** A database's schedules (none or one). */
export function listSchedules(ctx: ServiceContext, view: AddonView): Promise<PgBackupScheduleRow[]> {
  return ctx.db.select().from(pgBackupSchedules).where(eq(pgBackupSchedules.addonId, view.addon.id));
}

/** `pg:backups:unschedule`: the database is no longer backed up daily; its backups stay. */
export async function unscheduleBackups(ctx: ServiceContext, view: AddonView, id: string): Promise<PgBackupScheduleRow> {
  actingUser(ctx);
  const [row] = isUuid(id)
    ? await ctx.db
        .delete(pgBackupSchedules)
        .where(and(eq(pgBackupSchedules.id, id), eq(pgBackupSchedules.addonId, view.addon.id)))
        .returning()
    : [];
  if (!row) throw new ApiError("not_found", `Couldn't find that schedule of ${view.addon.name}.`, "schedule");
  return row;
}

/**
 * The day a schedule's backup is due on at `now`, or null: due once its hour has come in its
 * time zone on a day it has not run yet (a run that missed the hour still takes that day's). Pure.
 */
export function dueDay(s: Pick<PgBackupScheduleRow, "hour" | "timezone" | "lastDay">, now: Date): string | null {
  if (!knownTimeZone(s.timezone)) return null;
  const local = localTime(s.timezone, now);
  return local.hour >= s.hour && s.lastDay !== local.day ? local.day : null;
}

/** Schedules started per run (every 10 minutes); the rest wait for the next run, still within their day. */
const SCHEDULED_PER_RUN = 200;

/**
 * The daily backups that are due: each schedule whose hour has come in its time zone and
 * that has not run that day. A schedule is claimed (its day written) before its backup
 * starts, so runs that repeat or overlap take one backup a day.
 */
export async function runScheduledBackups(ctx: ServiceContext, now: Date): Promise<{ started: number; failed: number }> {
  const out = { started: 0, failed: 0 };
  const rows = await ctx.db.select().from(pgBackupSchedules).orderBy(asc(pgBackupSchedules.lastDay)).limit(5_000);
  for (const s of rows) {
    if (out.started + out.failed >= SCHEDULED_PER_RUN) break;
    const day = dueDay(s, now);
    if (!day) continue;
    const [claimed] = await ctx.db
      .update(pgBackupSchedules)
      .set({ lastDay: day, updatedAt: now })
      .where(and(eq(pgBackupSchedules.id, s.id), or(isNull(pgBackupSchedules.lastDay), ne(pgBackupSchedules.lastDay, day))))
      .returning();
    if (!claimed) continue;
    try {
      const view = await addonView(ctx.db, s.addonId);
      if (view?.addon.state !== "provisioned") continue;
      await startBackup(ctx, view, true);
      out.started++;
    } catch (err) {
      out.failed++;
      console.error(JSON.stringify({ job: "scheduled-backups", schedule: s.id, error: String(err) }));
    }
  }
  return out;
}

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
async function finishFork(db: Database, env: Bindings, t: PgTransferRow, result: TransferResult): Promise<void> {
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
