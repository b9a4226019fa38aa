import { calculateJwkThumbprint, importJWK, jwtVerify, SignJWT, type CryptoKey, type JWK } from "jose";
import { ApiError } from "../errors.ts";
import { Cache } from "../lib/cache.ts";
import { TOKEN_ISSUER, type TokenPurpose } from "../protocol/tokens.ts";

/**
 * The control plane's signing key (Ed25519, a private JWK in the COMMAND_SIGNING_KEY
 * secret; rotatable, see signingKeys). It signs commands and routed requests for host agents, and short-lived
 * upload/download URLs. Algorithm, issuer and expiry are pinned here and nowhere else.
 */
const ISSUER = TOKEN_ISSUER;
const ALG = "EdDSA";

interface KeySet {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The current key's public half, given to host agents. */
  publicJwk: JWK;
  /** Every key that may verify, by `kid`: the current one and those it replaced. */
  verifiers: Map<string, CryptoKey>;
  kid: string;
}

/**
 * The parsed signing secret, per secret: parsing it imports keys, which is not free. Pure
 * (a function of the secret alone, nothing of any tenant's), so one per isolate serves the
 * Worker, its Durable Objects and Node alike; a rotated secret is a new entry.
 */
const keySets = new Cache<string, Promise<KeySet>>("signing.key-sets", { entries: 4, lifetimeMs: 3_600_000 });

/**
 * Parses (once per isolate) the signing secret: one private JWK, or, while rotating, a
 * JSON array `[new, old, ...]`. New tokens are signed with the first; tokens signed
 * with any of them still verify until the old ones are dropped from the secret.
 */
export function signingKeys(privateJwkJson: string): Promise<KeySet> {
  const kept = keySets.get(privateJwkJson);
  if (kept) return kept;
  const parsing = parseSigningKeys(privateJwkJson);
  parsing.catch(() => keySets.delete(privateJwkJson));
  return keySets.set(privateJwkJson, parsing);
}

async function parseSigningKeys(privateJwkJson: string): Promise<KeySet> {
  const parsed = JSON.parse(privateJwkJson) as JWK | JWK[];
  const all = Array.isArray(parsed) ? parsed : [parsed];
  if (!all.length) throw new Error("COMMAND_SIGNING_KEY holds no key");
  const verifiers = new Map<string, CryptoKey>();
  for (const jwk of all) {
    const pub: JWK = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    verifiers.set(await calculateJwkThumbprint(pub), (await importJWK({ ...pub, alg: ALG }, ALG)) as CryptoKey);
  }
  const current = all[0]!;
  const kid = await calculateJwkThumbprint({ kty: current.kty, crv: current.crv, x: current.x });
  return {
    privateKey: (await importJWK({ ...current, alg: ALG }, ALG)) as CryptoKey,
    publicKey: verifiers.get(kid)!,
    publicJwk: { kty: current.kty, crv: current.crv, x: current.x, alg: ALG, use: "sig", kid },
    verifiers,
    kid,
  };
}

/** Signs a token for one purpose and audience, expiring after `ttlSeconds`, with a fresh jti (or the caller's, to record it). */
export async function signToken(
  privateJwkJson: string,
  claims: { purpose: TokenPurpose; audience: string; subject?: string; ttlSeconds: number; jti?: string; extra?: Record<string, unknown> },
): Promise<string> {
  const { privateKey, kid } = await signingKeys(privateJwkJson);
  const jwt = new SignJWT({ purpose: claims.purpose, ...claims.extra })
    .setProtectedHeader({ alg: ALG, kid })
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
  const { verifiers, publicKey } = await signingKeys(privateJwkJson);
  try {
    // The key is chosen by `kid` among our own; a token without one is checked against the current key.
    const { payload } = await jwtVerify(token, async (header) => (header.kid ? verifiers.get(header.kid) : publicKey) ?? publicKey, {
      algorithms: [ALG],
      issuer: ISSUER,
      audience,
    });
    if (payload.purpose !== purpose) throw new Error("wrong purpose");
    return payload;
  } catch {
    throw new ApiError("unauthorized", "Invalid or expired signature.");
  }
}
