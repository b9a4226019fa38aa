import { and, eq, gt, gte, inArray, sql } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { signInThrottles } from "../db/schema/index.ts";
import { sha256Hex } from "../lib/bytes.ts";
import { normalizeEmail } from "./accounts.ts";

/** Failed sign-ins allowed per account and per client address in one window. */
export const MAX_SIGN_IN_FAILURES = 10;
/** The window's length. */
export const SIGN_IN_WINDOW_S = 15 * 60;

/**
 * The counters one sign-in touches: the account (by email, hashed, whether or not such an
 * account exists, so a lockout says nothing about existence) and the client address.
 */
export async function throttleKeys(email: string, clientAddress: string): Promise<{ account: string; address: string }> {
  return { account: `account:${await sha256Hex(normalizeEmail(email))}`, address: `address:${clientAddress}` };
}

const inWindow = () => gt(signInThrottles.windowStartedAt, sql`now() - make_interval(secs => ${SIGN_IN_WINDOW_S})`);

/** True when any of the keys used up its failures in the current window. */
export async function isThrottled(db: Database, keys: string[]): Promise<boolean> {
  const [row] = await db
    .select({ key: signInThrottles.key })
    .from(signInThrottles)
    .where(and(inArray(signInThrottles.key, keys), gte(signInThrottles.failures, MAX_SIGN_IN_FAILURES), inWindow()))
    .limit(1);
  return !!row;
}

/** Counts one failure against each key, starting a new window where the old one ended. */
export async function recordFailure(db: Database, keys: string[]): Promise<void> {
  const stale = sql`${signInThrottles.windowStartedAt} <= now() - make_interval(secs => ${SIGN_IN_WINDOW_S})`;
  for (const key of keys) {
    await db
      .insert(signInThrottles)
      .values({ key, failures: 1 })
      .onConflictDoUpdate({
        target: signInThrottles.key,
        set: {
          failures: sql`case when ${stale} then 1 else ${signInThrottles.failures} + 1 end`,
          windowStartedAt: sql`case when ${stale} then now() else ${signInThrottles.windowStartedAt} end`,
        },
      });
  }
}

/** Forgets an account's failures after it signed in; the address's count stays, so interleaved successes do not reset it. */
export async function clearFailures(db: Database, key: string): Promise<void> {
  await db.delete(signInThrottles).where(eq(signInThrottles.key, key));
}

/** The client's address as Cloudflare reports it; one shared bucket when it is unknown. */
export function clientAddressOf(header: (name: string) => string | undefined): string {
  return (header("CF-Connecting-IP") ?? "").trim().slice(0, 64) || "unknown";
}
