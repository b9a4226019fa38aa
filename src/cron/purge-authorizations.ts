import { and, inArray, isNotNull, lt, or } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { oauthAuthorizations } from "../db/schema/index.ts";

/** Expired or revoked tokens are kept this long (for audit), then deleted. */
export const TOKEN_RETENTION_DAYS = 30;
const BATCH = 500;

/** Deletes tokens that expired or were revoked more than 30 days before `now`, in one bounded batch. */
export async function purgeExpiredAuthorizations(db: Database, now: Date): Promise<{ deleted: number }> {
  const cutoff = new Date(now.getTime() - TOKEN_RETENTION_DAYS * 86_400_000);
  const stale = db
    .select({ id: oauthAuthorizations.id })
    .from(oauthAuthorizations)
    .where(
      or(
        and(isNotNull(oauthAuthorizations.expiresAt), lt(oauthAuthorizations.expiresAt, cutoff)),
        and(isNotNull(oauthAuthorizations.revokedAt), lt(oauthAuthorizations.revokedAt, cutoff)),
      ),
    )
    .limit(BATCH);
  const rows = await db.delete(oauthAuthorizations).where(inArray(oauthAuthorizations.id, stale)).returning({ id: oauthAuthorizations.id });
  return { deleted: rows.length };
}
