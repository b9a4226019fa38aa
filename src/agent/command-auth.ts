import { importJWK, jwtVerify, type CryptoKey, type JWTPayload } from "jose";
import { TOKEN_ISSUER, type TokenPurpose } from "../protocol/tokens.ts";

/** The longest a command or route token may have lived (the contract's 60 s expiry). */
export const MAX_TOKEN_AGE_S = 60;
/** Clock drift between the control plane and this host that is still accepted. */
const CLOCK_TOLERANCE_S = 5;
/** Bounds the replay memory; beyond it the agent refuses rather than forgets. */
const MAX_REMEMBERED = 200_000;

/** A refused token: the HTTP status and a message that reveals nothing of why in detail. */
export class AuthError extends Error {
  constructor(
    readonly status: 401 | 503,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Verifies the control plane's signed tokens (commands and routed requests): Ed25519 only,
 * our issuer, the purpose the endpoint takes (a route token is no command), audience = this
 * host, at most 60 s old. A command's `jti` is accepted once. A route token is the router's
 * pass to one dyno, which anyone may reach through the router: the router reuses it for
 * many requests, and it is verified once and then remembered until it expires.
 */
export class CommandAuth {
  private key?: CryptoKey;
  private keyJson = "";
  private hostId = "";
  /** jti → when it may be forgotten (ms): after that its token has expired anyway. */
  private readonly seen = new Map<string, number>();
  private pruneAt = 1024;
  /** Route tokens verified: token → its payload and when it stops being accepted (ms). */
  private readonly routes = new Map<string, { payload: JWTPayload; until: number }>();

  /** Trusts `jwk` for tokens addressed to `hostId`; a repeated call with the same key is cheap. */
  async setKey(jwk: JsonWebKey, hostId: string): Promise<void> {
    const json = JSON.stringify(jwk);
    if (json === this.keyJson && hostId === this.hostId) return;
    // Pinning the key type keeps a key of another kind from ever verifying anything here.
    if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || jwk.d !== undefined) throw new Error("the command key must be a public Ed25519 JWK");
    this.key = (await importJWK({ kty: "OKP", crv: "Ed25519", x: jwk.x }, "EdDSA")) as CryptoKey;
    this.keyJson = json;
    this.hostId = hostId;
  }

  /** Whether a key is known yet (it arrives with the first heartbeat). */
  get ready(): boolean {
    return this.key !== undefined;
  }

  /** Checks an `Authorization: Bearer` header value holding a token for `purpose`. */
  bearer(header: string | undefined, purpose: TokenPurpose): Promise<JWTPayload> {
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
    return this.verify(m?.[1], purpose);
  }

  /** Verifies one token for `purpose` and spends its jti; `subject`, when given, must match `sub`. */
  async verify(token: string | undefined, purpose: TokenPurpose, subject?: string): Promise<JWTPayload> {
    if (!this.key) throw new AuthError(503, "this host has not received its command key yet");
    if (!token) throw new AuthError(401, "missing token");
    if (purpose === "route") {
      const known = this.routes.get(token);
      if (known && known.until > Date.now() && (subject === undefined || known.payload.sub === subject)) return known.payload;
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ["EdDSA", "Ed25519"],
        issuer: TOKEN_ISSUER,
        audience: this.hostId,
        maxTokenAge: MAX_TOKEN_AGE_S,
        clockTolerance: CLOCK_TOLERANCE_S,
        requiredClaims: ["jti", "iat", "exp"],
        ...(subject !== undefined ? { subject } : {}),
      }));
    } catch {
      throw new AuthError(401, "invalid token");
    }
    if (payload.purpose !== purpose) throw new AuthError(401, "invalid token");
    if (purpose === "route") this.remember(token, payload);
    else this.spend(payload);
    return payload;
  }

  private remember(token: string, payload: JWTPayload): void {
    const now = Date.now();
    if (this.routes.size >= 10_000) for (const [k, r] of this.routes) if (r.until <= now) this.routes.delete(k);
    if (this.routes.size >= 10_000) this.routes.clear();
    // Never past its own expiry, nor past the longest a token may live: as jwtVerify decides.
    const until = Math.min(payload.exp! * 1000, (payload.iat! + MAX_TOKEN_AGE_S) * 1000);
    this.routes.set(token, { payload, until });
  }

  private spend(payload: JWTPayload): void {
    const now = Date.now();
    const jti = String(payload.jti);
    const forgetAt = Math.max(payload.exp! * 1000, (payload.iat! + MAX_TOKEN_AGE_S) * 1000) + CLOCK_TOLERANCE_S * 1000;
    if (this.seen.size >= this.pruneAt) {
      for (const [k, t] of this.seen) if (t <= now) this.seen.delete(k);
      this.pruneAt = this.seen.size + 1024;
    }
    const known = this.seen.get(jti);
    if (known !== undefined && known > now) throw new AuthError(401, "token already used");
    if (this.seen.size >= MAX_REMEMBERED) throw new AuthError(503, "too many recent tokens; try again shortly");
    this.seen.set(jti, forgetAt);
  }
}
