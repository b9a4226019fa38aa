import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { bytesToBase64Url, sha256Hex, timingSafeEqual } from "../lib/bytes.ts";
import { Cache } from "../lib/cache.ts";

/**
 * The dashboard's cookies. Every one is `__Host-` prefixed (this host only, path /,
 * Secure), HttpOnly, SameSite=Lax and HMAC-signed with a key derived from the control
 * plane's signing key, so a tampered or foreign value is dropped before any lookup.
 */

/** A signed-in browser: holds a session secret whose SHA-256 is the stored row. */
export const SESSION_COOKIE = "dp_session";
/** A browser that is not signed in yet: a random secret that the sign-in and sign-up forms' CSRF token derives from. */
export const PRESESSION_COOKIE = "dp_presession";
/** A one-shot message for the page after a redirect. */
export const FLASH_COOKIE = "dp_flash";

/** How long a browser stays signed in. */
export const SESSION_TTL_S = 14 * 24 * 3600;

/** Cookie keys per signing secret (pure: a function of the platform's secret alone). */
const cookieKeys = new Cache<string, string>("cookies.keys", { entries: 4, lifetimeMs: 3_600_000 });

/** The HMAC key for cookies, derived from the private signing key with its own label. */
async function cookieKey(signingKey: string): Promise<string> {
  let key = cookieKeys.get(signingKey);
  if (!key) {
    // While the signing key rotates the secret is an array; cookies follow the current (first) key.
    const parsed = JSON.parse(signingKey) as { d?: string } | Array<{ d?: string }>;
    const d = (Array.isArray(parsed) ? parsed[0] : parsed)?.d;
    if (!d) throw new Error("COMMAND_SIGNING_KEY has no private part");
    key = await sha256Hex(`dynoplane browser cookies v1\u0000${d}`);
    cookieKeys.set(signingKey, key);
  }
  return key;
}

/** A fresh 256-bit secret for a session or pre-session cookie. */
export function newCookieSecret(): string {
  return bytesToBase64Url(crypto.getRandomValues(new Uint8Array(32)));
}

/** Reads a signed cookie; null when absent, unsigned or tampered with. */
export async function readCookie(c: Context, signingKey: string, name: string): Promise<string | null> {
  const value = await getSignedCookie(c, await cookieKey(signingKey), name, "host");
  return typeof value === "string" && value ? value : null;
}

/** Sets a signed cookie; `maxAgeS` omitted makes it last for the browser session. */
export async function writeCookie(c: Context, signingKey: string, name: string, value: string, maxAgeS?: number): Promise<void> {
  await setSignedCookie(c, name, value, await cookieKey(signingKey), {
    prefix: "host",
    httpOnly: true,
    sameSite: "Lax",
    ...(maxAgeS !== undefined && { maxAge: maxAgeS }),
  });
}

/** Removes a cookie from the browser. */
export function clearCookie(c: Context, name: string): void {
  deleteCookie(c, name, { prefix: "host", httpOnly: true, sameSite: "Lax" });
}

/**
 * The CSRF token for a cookie secret: a one-way derivation, so the token in a page's HTML
 * reveals nothing about the HttpOnly secret, and nothing extra needs storing.
 */
export async function csrfTokenFor(cookieSecret: string): Promise<string> {
  return sha256Hex(`csrf\u0000${cookieSecret}`);
}

/** Compares a submitted CSRF token with the expected one without an early exit. */
export function csrfMatches(submitted: unknown, expected: string): boolean {
  if (typeof submitted !== "string") return false;
  const enc = new TextEncoder();
  return timingSafeEqual(enc.encode(submitted), enc.encode(expected));
}

/**
 * True when a form post comes from a page of this very origin. Browsers send `Origin`
 * on every POST; a missing one is refused rather than guessed at.
 */
export function fromSameOrigin(c: Context): boolean {
  const origin = c.req.header("Origin");
  if (!origin || origin === "null") return false;
  return origin === new URL(c.req.url).origin;
}
