import { bytesToBase64Url, sha256Hex } from "../lib/bytes.ts";

/** Every API token starts with this, so a leaked one is easy to find and revoke. */
export const TOKEN_PREFIX = "dpl_";
const TOKEN_SHAPE = /^dpl_[A-Za-z0-9_-]{43}$/;
const REDACTION = "**********";

/** A new random API token (256 bits). */
export function generateToken(): string {
  return TOKEN_PREFIX + bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** True when a string has the shape of a dynoplane token; cheap, checked before any lookup. */
export function looksLikeToken(token: string): boolean {
  return TOKEN_SHAPE.test(token);
}

/** The stored form of a token: its SHA-256. */
export const hashToken = (token: string): Promise<string> => sha256Hex(token);

/** The parts kept in clear for display: the first 8 and the last 4 characters. */
export function tokenHints(token: string): { prefix: string; suffix: string } {
  return { prefix: token.slice(0, 8), suffix: token.slice(-4) };
}

/** Heroku's redacted form, which the CLI matches by prefix and suffix on logout. */
export function redactedToken(prefix: string, suffix: string): string {
  return `${prefix}${REDACTION}${suffix}`;
}
