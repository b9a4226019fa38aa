import { eq, sql } from "drizzle-orm";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "../../auth/password.ts";
import type { Database } from "../../db/client.ts";
import { accounts, type AccountRow } from "../../db/schema/index.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { recordAudit } from "../events/audit.ts";

const EMAIL_RE = /^[^\s@\u0000]+@[^\s@\u0000]+\.[^\s@\u0000]+$/;
export const MIN_PASSWORD_LENGTH = 8;

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** Creates an account; the email must be new and the password at least 8 characters. */
export async function createAccount(db: Database, input: { email: string; password: string; name?: string | null }): Promise<AccountRow> {
  const email = normalizeEmail(input.email);
  if (!EMAIL_RE.test(email) || email.length > 254) throw invalidParams("Email is not a valid email address.");
  if (input.password.length < MIN_PASSWORD_LENGTH) {
    throw invalidParams(`Password must be at least ${MIN_PASSWORD_LENGTH} characters.`);
  }
  const passwordHash = await hashPassword(input.password);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(accounts)
      .values({ email, passwordHash, name: input.name ?? null })
      .onConflictDoNothing({ target: accounts.email })
      .returning();
    if (!row) throw invalidParams("That email address is already registered.");
    await recordAudit(tx, { actor: { accountId: row.id, email }, action: "account.create" });
    return row;
  });
}

/**
 * Returns the account when the password matches. Unknown emails cost the same PBKDF2
 * work as known ones, so timing does not tell whether an email exists.
 */
export async function authenticatePassword(db: Database, email: string, password: string): Promise<AccountRow | null> {
  const normalized = normalizeEmail(email);
  // No stored email holds a NUL (Postgres text cannot), and querying with one is an error.
  const [row] = normalized.includes("\u0000") ? [] : await db.select().from(accounts).where(eq(accounts.email, normalized)).limit(1);
  const ok = await verifyPassword(password, row?.passwordHash ?? DUMMY_PASSWORD_HASH);
  if (!row || !ok) return null;
  await db.update(accounts).set({ lastLoginAt: sql`now()` }).where(eq(accounts.id, row.id));
  return row;
}

/** Looks an account up by id; used after authentication, so a miss is a server-side surprise. */
export async function getAccount(db: Database, id: string): Promise<AccountRow> {
  const [row] = await db.select().from(accounts).where(eq(accounts.id, id)).limit(1);
  if (!row) throw new ApiError("not_found", "Couldn't find that account.", "account");
  return row;
}

/** An account by email, or the API's not_found. */
export async function getAccountByEmail(db: Database, email: string): Promise<AccountRow> {
  const [row] = await db
    .select()
    .from(accounts)
    .where(eq(accounts.email, normalizeEmail(email)))
    .limit(1);
  if (!row) throw new ApiError("not_found", `No account has the email ${email}.`, "account");
  return row;
}

export async function countAccounts(db: Database): Promise<number> {
  const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(accounts);
  return row?.n ?? 0;
}

/**
 * Marks an account verified (Heroku's card on file: the larger eco pool) or not. A pool
 * that grows lifts the mark of spent hours at once; the next scheduled run sets it again
 * if the new pool is spent too.
 */
export async function setAccountVerified(db: Database, email: string, verified: boolean): Promise<AccountRow> {
  const [row] = await db
    .update(accounts)
    .set({ verified, ...(verified ? { ecoExhaustedUntil: null } : {}), updatedAt: sql`now()` })
    .where(eq(accounts.email, normalizeEmail(email)))
    .returning();
  if (!row) throw new ApiError("not_found", `No account has the email ${email}.`, "account");
  await recordAudit(db, { actor: null, action: verified ? "account.verify" : "account.unverify", details: { email: row.email } });
  return row;
}

/** Makes an account an operator of the platform (the dashboard's fleet page) or not. */
export async function setAccountOperator(db: Database, email: string, operator: boolean): Promise<AccountRow> {
  const [row] = await db
    .update(accounts)
    .set({ operator, updatedAt: sql`now()` })
    .where(eq(accounts.email, normalizeEmail(email)))
    .returning();
  if (!row) throw new ApiError("not_found", `No account has the email ${email}.`, "account");
  await recordAudit(db, { actor: null, action: operator ? "account.operator" : "account.unoperator", details: { email: row.email } });
  return row;
}
