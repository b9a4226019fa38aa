import { and, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { type PgTransferRow, pgTransfers, type TransferLog } from "../../db/schema/index.ts";
import { ApiError } from "../../errors.ts";
import { DUMP_PART_BYTES, type TransferSpec } from "../../protocol/transfer.ts";
import { chooseBuildHost } from "../builds/builds.ts";
import type { ServiceContext } from "../context.ts";
import { sendCommand } from "../dynos/host-commands.ts";
import { type AddonView, addonCredentials, planOf, providerFor, provisioned, serverCall } from "./addons.ts";
import type { DatabaseCredentials } from "./providers/postgres.ts";

/**
 * Postgres transfers, the parts every kind shares: the transfer object the CLI reads, its
 * numbering and ending, giving one to a host (src/protocol/transfer.ts), and a backup's dump
 * in the blob store. The verbs are in backups.ts, copies.ts and backup-schedules.ts.
 */

/** How long a transfer may run before it counts as failed (the agent ends it then too). */
export const TRANSFER_TIMEOUT_S = 60 * 60;

/** A dump is never larger than this, whatever the plan. */
export const MAX_DUMP_BYTES = 20 * 1024 ** 3;

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
export const herokuTime = (d: Date) => `${d.toISOString().slice(0, 19).replace("T", " ")} +0000`;

/** What names a backup for a restore (`to_url`): not a download (that takes a signed URL), only the backup's address. */
export const backupUrl = (apiHost: string, id: string) => `https://${apiHost}/client/v11/backups/${id}`;

/** The attachment name a database goes by on its own app (`DATABASE`), for the transfer's names. */
export function attachmentName(view: AddonView): string {
  const own = view.attachments.filter((a) => a.app.id === view.addon.appId).map((a) => a.attachment.name);
  return own.find((n) => n === "DATABASE") ?? own[0] ?? view.addon.color;
}

/** A line for a transfer's log. */
export const logLine = (message: string, at = Date.now()): TransferLog => ({ created_at: herokuTime(new Date(at)), message });

/** Inserts a transfer with the app's next number (one sequence for backups and restores, as `b001`, `r002`). */
export async function insertTransfer(db: Database, row: Omit<typeof pgTransfers.$inferInsert, "num">): Promise<PgTransferRow> {
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
export async function endTransfer(db: Database, id: string, set: Partial<typeof pgTransfers.$inferInsert>): Promise<PgTransferRow | null> {
  const [row] = await db
    .update(pgTransfers)
    .set({ ...set, finishedAt: new Date(), updatedAt: new Date() })
    .where(and(eq(pgTransfers.id, id), isNull(pgTransfers.finishedAt)))
    .returning();
  return row ?? null;
}

/**
 * Gives a transfer to the host with the most free memory: the signed `transfer` command
 * with the database's own credentials. A transfer no host takes fails at once.
 */
export async function dispatch(
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
export async function measure(ctx: Pick<ServiceContext, "db" | "env">, view: AddonView): Promise<{ sizeBytes: number; major: number }> {
  const creds = await addonCredentials(ctx.db, view, ctx.env);
  const stats = await serverCall(() => providerFor(ctx.env).stats(provisioned(view), creds));
  const major = Number(/^(\d+)/.exec(stats.version)?.[1]);
  if (!Number.isInteger(major)) throw new ApiError("unavailable", `Could not tell the database server's version (${stats.version}).`);
  return { sizeBytes: stats.sizeBytes, major };
}

/** `b001`, `a002`, `r003`, `c004`: the CLI's name of a transfer. */
export const backupName = (t: Pick<PgTransferRow, "kind" | "scheduled" | "num">) =>
  `${t.kind === "restore" ? "r" : t.kind === "copy" ? "c" : t.scheduled ? "a" : "b"}${String(t.num).padStart(3, "0")}`;

/** Deletes a backup's dump and marks it deleted. */
export async function discard(db: Database, blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  await db.update(pgTransfers).set({ deletedAt: new Date(), updatedAt: new Date() }).where(eq(pgTransfers.id, t.id));
  if (t.blobKey) await blobs.delete(t.blobKey);
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
export const dumpKey = (t: PgTransferRow) => `backups/${t.appId}/${t.id}.dump`;

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
  // The blob store's refusal is the backup's reason (the host reports it): said as such, not as an internal error.
  const refused = (err: unknown): never => {
    throw new ApiError("unavailable", `The blob store refused part ${n} of the dump: ${(err as Error).message}`);
  };
  const upload = t.uploadId ? blobs.resumeMultipartUpload(dumpKey(t), t.uploadId) : await blobs.createMultipartUpload(dumpKey(t)).catch(refused);
  const part = await upload.uploadPart(n, body.pipeThrough(new FixedLengthStream(length))).catch(refused);
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
export async function completeDump(db: Database, blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  if (!t.uploadId || !t.uploadedParts.length) throw new Error("The host uploaded no dump.");
  await blobs.resumeMultipartUpload(dumpKey(t), t.uploadId).complete(t.uploadedParts);
  await db
    .update(pgTransfers)
    .set({ blobKey: dumpKey(t), uploadId: null, updatedAt: new Date() })
    .where(eq(pgTransfers.id, t.id));
  t.blobKey = dumpKey(t);
}

/** Gives up a backup's unfinished upload (the parts stored so far are deleted). */
export async function abortDump(blobs: R2Bucket, t: PgTransferRow): Promise<void> {
  if (t.uploadId)
    await blobs
      .resumeMultipartUpload(dumpKey(t), t.uploadId)
      .abort()
      .catch(() => {});
}
