import { bytesToBase64Url, sha256Hex } from "../lib/bytes.ts";
import { ApiError } from "../errors.ts";
import { signToken, verifyToken } from "./signing.ts";

/**
 * The browser login handoff (`heroku login`). The CLI gets a poll token: a JWT signed by
 * the control plane's key for one attempt, expiring with it. The browser gets a link with
 * a different random id. Only hashes of both secrets are stored.
 */

/** How long an attempt (and its poll token) lives; the CLI itself gives up after 10 minutes. */
export const ATTEMPT_TTL_S = 10 * 60;
/** The poll token's audience: nothing else the key signs is accepted here. */
export const POLL_AUDIENCE = "dynoplane:cli-login";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BROWSER_ID_RE = /^[A-Za-z0-9_-]{43}$/;

/** A fresh 256-bit id for the browser link. */
export function newBrowserId(): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** True when a string has the shape of a browser id; checked before any lookup. */
export const looksLikeBrowserId = (id: string) => BROWSER_ID_RE.test(id);

/** The stored form of a browser id or a poll token's jti. */
export const handoffHash = (secret: string) => sha256Hex(secret);

/** Signs the poll token for `attemptId`; returns it with its jti, whose hash the caller stores. */
export async function signPollToken(signingKey: string, attemptId: string): Promise<{ token: string; jti: string }> {
  const jti = bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));
  const token = await signToken(signingKey, { purpose: "cli-login", audience: POLL_AUDIENCE, subject: attemptId, ttlSeconds: ATTEMPT_TTL_S, jti });
  return { token, jti };
}

/**
 * Checks a poll token for the attempt named in the URL: our signature (EdDSA only),
 * issuer, audience, purpose and expiry, then that it names this very attempt. Returns the
 * jti hash to match against the stored one. Every failure is the same 401.
 */
export async function verifyPollToken(signingKey: string, token: string, attemptId: string): Promise<string> {
  const payload = await verifyToken(signingKey, token, "cli-login", POLL_AUDIENCE);
  if (!UUID_RE.test(attemptId) || payload.sub !== attemptId || typeof payload.jti !== "string" || !payload.jti) {
    throw new ApiError("unauthorized", "Invalid or expired signature.");
  }
  return handoffHash(payload.jti);
}

/** The machine named in the CLI's description ("Heroku CLI login from <hostname>"), for the approval question. */
export function hostnameOf(description: string): string | null {
  const m = /\bfrom\s+(\S{1,253})\s*$/.exec(description);
  return m ? m[1]! : null;
}
