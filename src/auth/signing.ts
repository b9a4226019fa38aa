import { importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from "jose";
import { ApiError } from "../errors.ts";

/**
 * The control plane's signing key (Ed25519, a private JWK in the COMMAND_SIGNING_KEY
 * secret). It signs commands and routed requests for host agents, and short-lived
 * upload/download URLs. Algorithm, issuer and expiry are pinned here and nowhere else.
 */
export const ISSUER = "dynoplane";
const ALG = "EdDSA";

export type TokenPurpose = "command" | "route" | "slug-upload" | "log-session" | "cli-login" | "source-upload" | "source-download" | "build-output";

const keyCache = new Map<string, { privateKey: CryptoKey; publicKey: CryptoKey; publicJwk: JWK }>();

/** Parses (once per isolate) the private JWK and derives its public half. */
export async function signingKeys(privateJwkJson: string) {
  let keys = keyCache.get(privateJwkJson);
  if (!keys) {
    const jwk = JSON.parse(privateJwkJson) as JWK;
    const publicJwk: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, alg: ALG, use: "sig" };
    keys = {
      privateKey: (await importJWK({ ...jwk, alg: ALG }, ALG)) as CryptoKey,
      publicKey: (await importJWK(publicJwk, ALG)) as CryptoKey,
      publicJwk,
    };
    keyCache.set(privateJwkJson, keys);
  }
  return keys;
}

/** Signs a token for one purpose and audience, expiring after `ttlSeconds`, with a fresh jti (or the caller's, to record it). */
export async function signToken(
  privateJwkJson: string,
  claims: { purpose: TokenPurpose; audience: string; subject?: string; ttlSeconds: number; jti?: string; extra?: Record<string, unknown> },
): Promise<string> {
  const { privateKey } = await signingKeys(privateJwkJson);
  const jwt = new SignJWT({ purpose: claims.purpose, ...claims.extra })
    .setProtectedHeader({ alg: ALG })
    .setIssuer(ISSUER)
    .setAudience(claims.audience)
    .setIssuedAt()
    .setExpirationTime(`${claims.ttlSeconds}s`)
    .setJti(claims.jti ?? crypto.randomUUID());
  if (claims.subject) jwt.setSubject(claims.subject);
  return jwt.sign(privateKey);
}

/** Verifies a token of ours for `purpose` and `audience`; any failure is one public `unauthorized`. */
export async function verifyToken(privateJwkJson: string, token: string, purpose: TokenPurpose, audience: string) {
  const { publicKey } = await signingKeys(privateJwkJson);
  try {
    const { payload } = await jwtVerify(token, publicKey, { algorithms: [ALG], issuer: ISSUER, audience });
    if (payload.purpose !== purpose) throw new Error("wrong purpose");
    return payload;
  } catch {
    throw new ApiError("unauthorized", "Invalid or expired signature.");
  }
}
