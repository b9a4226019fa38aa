import { and, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { signInThrottles } from "../../db/schema/index.ts";
import { sha256Hex } from "../../lib/bytes.ts";
import { normalizeEmail } from "./accounts.ts";

/** Failed sign-ins allowed for one account from one client address in one window. */
export const MAX_SIGN_IN_FAILURES = 10;
/** Failed sign-ins allowed from one client address, across every account, in one window. */
export const MAX_ADDRESS_FAILURES = 100;
/** The window's length. */
export const SIGN_IN_WINDOW_S = 15 * 60;

/** One counter and how many failures it allows. */
export interface ThrottleKey {
  key: string;
  max: number;
}

/**
 * The counters one sign-in touches: the (account, address) pair, which locks after a few
 * failures, and the address, which allows many more across accounts. The account is named by
 * its email, hashed, whether or not such an account exists, so a lockout says nothing about
 * existence. No counter spans addresses: guesses from one place never lock the account's
 * owner out from another.
 */
export async function throttleKeys(email: string, clientAddress: string): Promise<{ pair: ThrottleKey; address: ThrottleKey }> {
  const account = await sha256Hex(normalizeEmail(email));
  return {
    pair: { key: `pair:${account}:${clientAddress}`, max: MAX_SIGN_IN_FAILURES },
    address: { key: `address:${clientAddress}`, max: MAX_ADDRESS_FAILURES },
  };
}

const inWindow = () => gt(signInThrottles.windowStartedAt, sql`now() - make_interval(secs => ${SIGN_IN_WINDOW_S})`);

/** True when any of the counters used up its failures in the current window. */
export async function isThrottled(db: Database, keys: ThrottleKey[]): Promise<boolean> {
  const rows = await db
    .select({ key: signInThrottles.key, failures: signInThrottles.failures })
    .from(signInThrottles)
    .where(
      and(
        inArray(
          signInThrottles.key,
          keys.map((k) => k.key),
        ),
        inWindow(),
      ),
    );
  return rows.some((r) => r.failures >= (keys.find((k) => k.key === r.key)?.max ?? Infinity));
}

/** Counts one failure against each counter, starting a new window where the old one ended. */
export async function recordFailure(db: Database, keys: ThrottleKey[]): Promise<void> {
  const stale = sql`${signInThrottles.windowStartedAt} <= now() - make_interval(secs => ${SIGN_IN_WINDOW_S})`;
  for (const { key } of keys) {
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

/** Forgets a pair's failures after its account signed in; the address's count stays, so interleaved successes do not reset it. */
export async function clearFailures(db: Database, key: ThrottleKey): Promise<void> {
  await db.delete(signInThrottles).where(eq(signInThrottles.key, key.key));
}

/**
 * The client's address: from the header named by `CLIENT_ADDRESS_HEADER` where a proxy in
 * front sets it and a client cannot (Cloudflare's `CF-Connecting-IP`); without one, the
 * address the listening socket saw, which workerd gives a Worker as `request.cf.clientIp`
 * when nothing in front of it describes the request (the local platform). A header a client
 * sends changes nothing then. Only where neither exists does every client count as one
 * ("unknown").
 */
export function clientAddressOf(req: Request, trustedHeader: string | undefined): string {
  if (trustedHeader) return (req.headers.get(trustedHeader) ?? "").trim().slice(0, 64) || "unknown";
  const seen = (req as Request & { cf?: { clientIp?: unknown } }).cf?.clientIp;
  return typeof seen === "string" && seen ? socketHost(seen).slice(0, 64) : "unknown";
}

/** The host of a socket address (`1.2.3.4:5`, `[::1]:5`, or a bare address). Pure. */
export function socketHost(address: string): string {
  const v6 = /^\[(.+)\]:\d+$/.exec(address);
  if (v6) return v6[1]!;
  const v4 = /^([^:]+):\d+$/.exec(address);
  return v4 ? v4[1]! : address;
}
