import { and, eq, gt, isNull, sql } from "drizzle-orm";
import { newCookieSecret, SESSION_TTL_S } from "../../auth/browser-cookies.ts";
import type { Database } from "../../db/client.ts";
import { accounts, browserSessions } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { sha256Hex } from "../../lib/bytes.ts";
import { recordAudit } from "../events/audit.ts";

/** A signed-in browser, as the dashboard sees it. */
export interface BrowserSession {
  id: string;
  /** The secret from the cookie; the CSRF token derives from it. */
  secret: string;
  actor: Actor;
}

/**
 * The actor a browser session acts as. It holds no API token, so `authorizationId`
 * names the session itself (audit entries and nothing else read it).
 */
const actorOf = (sessionId: string, account: { id: string; email: string }): Actor => ({
  accountId: account.id,
  email: account.email,
  authorizationId: sessionId,
  isDefaultKey: false,
});

/** Starts a session for an account that just proved its password; returns the cookie secret. */
export async function createBrowserSession(
  db: Database,
  account: { id: string; email: string },
  meta: { userAgent?: string | null; clientAddress?: string | null; requestId?: string },
): Promise<BrowserSession> {
  const secret = newCookieSecret();
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(browserSessions)
      .values({
        accountId: account.id,
        secretHash: await sha256Hex(secret),
        userAgent: meta.userAgent?.slice(0, 512) ?? null,
        clientAddress: meta.clientAddress ?? null,
        expiresAt: sql`now() + make_interval(secs => ${SESSION_TTL_S})`,
      })
      .returning({ id: browserSessions.id });
    const actor = actorOf(row!.id, account);
    await recordAudit(tx, { actor, action: "browser_session.create", details: { session_id: row!.id }, requestId: meta.requestId });
    return { id: row!.id, secret, actor };
  });
}

/** The live (unexpired, unrevoked) session a cookie secret names, or null. */
export async function authenticateBrowserSession(db: Database, secret: string): Promise<BrowserSession | null> {
  const [row] = await db
    .select({ id: browserSessions.id, accountId: accounts.id, email: accounts.email })
    .from(browserSessions)
    .innerJoin(accounts, eq(accounts.id, browserSessions.accountId))
    .where(and(eq(browserSessions.secretHash, await sha256Hex(secret)), isNull(browserSessions.revokedAt), gt(browserSessions.expiresAt, sql`now()`)))
    .limit(1);
  return row ? { id: row.id, secret, actor: actorOf(row.id, { id: row.accountId, email: row.email }) } : null;
}

/** Ends one session (sign out); its cookie stops working at once. */
export async function revokeBrowserSession(db: Database, session: BrowserSession, requestId?: string): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.update(browserSessions).set({ revokedAt: sql`now()`, updatedAt: sql`now()` }).where(eq(browserSessions.id, session.id));
    await recordAudit(tx, { actor: session.actor, action: "browser_session.revoke", details: { session_id: session.id }, requestId });
  });
}

/** Ends every browser session of the account (sign out everywhere); returns how many were live. */
export async function revokeAllBrowserSessions(db: Database, actor: Actor, requestId?: string): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .update(browserSessions)
      .set({ revokedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(browserSessions.accountId, actor.accountId), isNull(browserSessions.revokedAt), gt(browserSessions.expiresAt, sql`now()`)))
      .returning({ id: browserSessions.id });
    await recordAudit(tx, { actor, action: "browser_session.revoke_all", details: { sessions: rows.length }, requestId });
    return rows.length;
  });
}

/** How many browsers are signed in to the account now. */
export async function countBrowserSessions(db: Database, accountId: string): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(browserSessions)
    .where(and(eq(browserSessions.accountId, accountId), isNull(browserSessions.revokedAt), gt(browserSessions.expiresAt, sql`now()`)));
  return row?.n ?? 0;
}
