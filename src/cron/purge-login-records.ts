import { and, inArray, isNotNull, lt, or } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { browserSessions, loginAttempts, signInThrottles } from "../db/schema/index.ts";

/** Ended login attempts and browser sessions are kept this long (for audit), then deleted. */
export const LOGIN_RECORD_RETENTION_DAYS = 7;
const BATCH = 500;

/**
 * Deletes, in bounded batches, CLI login attempts and browser sessions that expired or were
 * revoked more than 7 days before `now`, and sign-in failure counters whose window ended a
 * day ago (an expired window no longer blocks anyone).
 */
export async function purgeLoginRecords(db: Database, now: Date): Promise<{ attempts: number; sessions: number; throttles: number }> {
  const cutoff = new Date(now.getTime() - LOGIN_RECORD_RETENTION_DAYS * 86_400_000);
  const oldAttempts = db.select({ id: loginAttempts.id }).from(loginAttempts).where(lt(loginAttempts.expiresAt, cutoff)).limit(BATCH);
  const attempts = await db.delete(loginAttempts).where(inArray(loginAttempts.id, oldAttempts)).returning({ id: loginAttempts.id });

  const oldSessions = db
    .select({ id: browserSessions.id })
    .from(browserSessions)
    .where(or(lt(browserSessions.expiresAt, cutoff), and(isNotNull(browserSessions.revokedAt), lt(browserSessions.revokedAt, cutoff))))
    .limit(BATCH);
  const sessions = await db.delete(browserSessions).where(inArray(browserSessions.id, oldSessions)).returning({ id: browserSessions.id });

  const dayAgo = new Date(now.getTime() - 86_400_000);
  const oldKeys = db.select({ key: signInThrottles.key }).from(signInThrottles).where(lt(signInThrottles.windowStartedAt, dayAgo)).limit(BATCH);
  const throttles = await db.delete(signInThrottles).where(inArray(signInThrottles.key, oldKeys)).returning({ key: signInThrottles.key });

  return { attempts: attempts.length, sessions: sessions.length, throttles: throttles.length };
}
