import { and, eq, gt, isNull, sql } from "drizzle-orm";
import { ATTEMPT_TTL_S, handoffHash, newBrowserId, signPollToken } from "../../auth/login-handoff.ts";
import type { Database } from "../../db/client.ts";
import { accounts, loginAttempts, type LoginAttemptRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { recordAudit } from "../events/audit.ts";
import { createAuthorization } from "./authorizations.ts";

/** A started login: the row and the two secrets that exist in clear only in the `POST /auth` answer. */
export interface NewLoginAttempt {
  attempt: LoginAttemptRow;
  /** For the browser URL; only its hash is stored. */
  browserId: string;
  /** The CLI's poll token; only its jti's hash is stored. */
  token: string;
}

/** Starts a browser login for the CLI: one row, a browser id and a poll token bound to it. */
export async function createLoginAttempt(db: Database, signingKey: string, description: string): Promise<NewLoginAttempt> {
  const id = crypto.randomUUID();
  const browserId = newBrowserId();
  const { token, jti } = await signPollToken(signingKey, id);
  const [attempt] = await db
    .insert(loginAttempts)
    .values({
      id,
      browserIdHash: await handoffHash(browserId),
      pollJtiHash: await handoffHash(jti),
      description,
      expiresAt: sql`now() + make_interval(secs => ${ATTEMPT_TTL_S})`,
    })
    .returning();
  return { attempt: attempt!, browserId, token };
}

/** The attempt a browser link names, whatever its state (the page explains expired or used links). */
export async function findAttemptForBrowser(db: Database, browserId: string): Promise<LoginAttemptRow | null> {
  const [row] = await db
    .select()
    .from(loginAttempts)
    .where(eq(loginAttempts.browserIdHash, await handoffHash(browserId)))
    .limit(1);
  return row ?? null;
}

/** True while an attempt still waits for the browser's answer. */
export const isOpen = (row: LoginAttemptRow, now = new Date()) => row.status === "pending" && row.expiresAt > now;

/**
 * Records the signed-in person's answer. Only a pending, unexpired attempt can be decided,
 * and only once; returns null otherwise.
 */
export async function decideAttempt(db: Database, actor: Actor, browserId: string, approve: boolean, requestId?: string): Promise<LoginAttemptRow | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(loginAttempts)
      .set({ status: approve ? "approved" : "denied", accountId: actor.accountId, decidedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(loginAttempts.browserIdHash, await handoffHash(browserId)), eq(loginAttempts.status, "pending"), gt(loginAttempts.expiresAt, sql`now()`)))
      .returning();
    if (!row) return null;
    await recordAudit(tx, { actor, action: approve ? "cli_login.approve" : "cli_login.deny", details: { login_attempt_id: row.id }, requestId });
    return row;
  });
}

/**
 * Marks the poll token used: succeeds once per attempt, for the token whose jti was
 * recorded, while the attempt is unexpired. A replay finds `polled_at` already set.
 */
export async function claimPoll(db: Database, attemptId: string, jtiHash: string): Promise<LoginAttemptRow | null> {
  const [row] = await db
    .update(loginAttempts)
    .set({ polledAt: sql`now()`, updatedAt: sql`now()` })
    .where(
      and(eq(loginAttempts.id, attemptId), eq(loginAttempts.pollJtiHash, jtiHash), isNull(loginAttempts.polledAt), gt(loginAttempts.expiresAt, sql`now()`)),
    )
    .returning();
  return row ?? null;
}

/** What one look at a claimed attempt found. */
export type PollOutcome = { kind: "waiting" } | { kind: "approved"; token: string } | { kind: "denied" } | { kind: "expired" };

/** Looks at a claimed attempt once (a cheap read; the CLI's wait polls this). */
export async function collectAttempt(db: Database, attemptId: string, requestId?: string): Promise<PollOutcome> {
  const [row] = await db
    .select({ status: loginAttempts.status, expiresAt: loginAttempts.expiresAt })
    .from(loginAttempts)
    .where(eq(loginAttempts.id, attemptId))
    .limit(1);
  if (row?.status === "approved") {
    const token = await redeemAttempt(db, attemptId, requestId);
    if (token) return { kind: "approved", token };
  }
  if (row?.status === "denied") return { kind: "denied" };
  if (row?.status !== "pending" || row.expiresAt <= new Date()) return { kind: "expired" };
  return { kind: "waiting" };
}

/**
 * Issues the API token of an approved attempt. The attempt turns `redeemed` in the same
 * transaction, so a token is issued at most once per attempt; null if it already was.
 */
async function redeemAttempt(db: Database, attemptId: string, requestId?: string): Promise<string | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(loginAttempts)
      .set({ status: "redeemed", updatedAt: sql`now()` })
      .where(and(eq(loginAttempts.id, attemptId), eq(loginAttempts.status, "approved")))
      .returning();
    if (!row?.accountId) return null;
    const [account] = await tx.select().from(accounts).where(eq(accounts.id, row.accountId)).limit(1);
    if (!account) return null;
    const { row: authorization, token } = await createAuthorization(tx, account.id, { description: row.description }, { email: account.email, requestId });
    await tx.update(loginAttempts).set({ authorizationId: authorization.id }).where(eq(loginAttempts.id, row.id));
    return token;
  });
}
