import { z } from "zod";

/**
 * Postgres transfers (PGBackups): the control plane gives each backup and restore to a host
 * agent with a signed `transfer` command (see COMMAND in ./host.ts). The agent runs
 * `pg_dump` or `pg_restore` (a copy: both) in a sandbox of the app's, with the databases' own
 * credentials (never a superuser's), and moves the dump through these calls, each with
 * `Authorization: Bearer <host secret>`:
 *
 *   PUT  /internal/hosts/transfers/:id/dump/parts/:n
 *                                               part n (from 1, in order) of a backup's dump
 *                                               (pg_dump's custom format) as pg_dump writes
 *                                               it: DUMP_PART_BYTES each but the last, with
 *                                               Content-Length → 204
 *   GET  /internal/hosts/transfers/:id/dump     a restore's dump (its backup's) → the bytes
 *   POST /internal/hosts/transfers/:id/result   TransferResult → 204
 */

/** Where the database is, as the app reaches it. */
export const TRANSFER_DATABASE = z.object({
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65_535),
  database: z.string().min(1).max(63),
  user: z.string().min(1).max(63),
  password: z.string().min(1).max(255),
});

export const TRANSFER_SPEC = z.object({
  id: z.string().uuid(),
  /** The app the sandbox belongs to (its uid). */
  app_id: z.string().uuid(),
  kind: z.enum(["backup", "restore", "copy"]),
  /** Where a restore or copy goes; what a backup dumps. */
  database: TRANSFER_DATABASE,
  /** What a copy dumps (with its own credentials). */
  source: TRANSFER_DATABASE.optional(),
  /** The server's major version: pg_dump and pg_restore must be of it or newer. */
  pg_major: z.number().int().min(10).max(99),
  /** Time limit in seconds; past it the agent ends the transfer as failed. */
  timeout_s: z.number().int().positive(),
  /** A backup's largest dump, in bytes. */
  max_bytes: z.number().int().positive(),
});
export type TransferSpec = z.infer<typeof TRANSFER_SPEC>;

export const TRANSFER_RESULT = z.object({
  succeeded: z.boolean(),
  /** The tool's own lines (pg_dump's and pg_restore's `--verbose` output), the last ones kept. */
  logs: z.array(z.object({ at: z.number().int(), message: z.string().max(4096) })).max(2_000),
  /** A backup's dump size (uploaded before this report). */
  processed_bytes: z.number().int().min(0),
  /** Errors pg_restore reported and went on from. */
  warnings: z.number().int().min(0),
  /** Why it failed, one line. */
  error: z.string().max(2048).nullable(),
});
export type TransferResult = z.infer<typeof TRANSFER_RESULT>;

/** The size of each part of a backup's upload but the last (the blob store's multipart parts are all of one size). */
export const DUMP_PART_BYTES = 16 * 1024 * 1024;

/** The concrete path of one of a transfer's calls, `suffix` being `/dump` or `/result`. */
export const transferPath = (transferId: string, suffix: string) => `/internal/hosts/transfers/${encodeURIComponent(transferId)}${suffix}`;
