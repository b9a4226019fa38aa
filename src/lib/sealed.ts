/**
 * Secrets the platform must be able to read back (a webhook's signing secret), sealed with
 * AES-256-GCM under a key derived (HKDF-SHA-256) from the platform's own signing key, so
 * the database alone does not give them away. `v1.<iv>.<ciphertext>`, base64url.
 */

import { base64ToBytes, bytesToBase64Url } from "./bytes.ts";
import { Cache } from "./cache.ts";

const encoder = new TextEncoder();
/** Sealing keys per platform secret (pure: a function of the platform's secret alone). */
const sealingKeys = new Cache<string, Promise<CryptoKey>>("sealed.keys", { entries: 4, lifetimeMs: 3_600_000 });

function sealingKey(platformKey: string): Promise<CryptoKey> {
  let key = sealingKeys.get(platformKey);
  if (!key) {
    key = (async () => {
      const base = await crypto.subtle.importKey("raw", encoder.encode(platformKey), "HKDF", false, ["deriveKey"]);
      return crypto.subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: encoder.encode("dynoplane sealed secrets"), info: encoder.encode("v1") },
        base,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
    })();
    sealingKeys.set(platformKey, key);
  }
  return key;
}

/** base64url without padding back to bytes (base64ToBytes wants the plain alphabet). */
const unb64url = (text: string) => base64ToBytes(text.replace(/-/g, "+").replace(/_/g, "/"));

export async function seal(platformKey: string, secret: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await sealingKey(platformKey), encoder.encode(secret)));
  return `v1.${bytesToBase64Url(iv)}.${bytesToBase64Url(sealed)}`;
}

export async function unseal(platformKey: string, sealed: string): Promise<string> {
  const [version, iv, body] = sealed.split(".");
  if (version !== "v1" || !iv || !body) throw new Error("not a sealed secret");
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: unb64url(iv) }, await sealingKey(platformKey), unb64url(body));
  return new TextDecoder().decode(plain);
}
