import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { signToken, verifyToken } from "../../src/auth/signing.ts";

async function privateJwk(): Promise<string> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return JSON.stringify(await exportJWK(privateKey));
}

describe("signing key rotation", () => {
  it("signs with the newest key and still verifies tokens of the key it replaced", async () => {
    const [oldKey, newKey] = [await privateJwk(), await privateJwk()];
    const rotating = JSON.stringify([JSON.parse(newKey), JSON.parse(oldKey)]);
    const before = await signToken(oldKey, { purpose: "route", audience: "host-1", ttlSeconds: 60 });
    const after = await signToken(rotating, { purpose: "route", audience: "host-1", ttlSeconds: 60 });
    // During the rotation both verify; the new token was made with the new key.
    await expect(verifyToken(rotating, before, "route", "host-1")).resolves.toMatchObject({ aud: "host-1" });
    await expect(verifyToken(rotating, after, "route", "host-1")).resolves.toMatchObject({ aud: "host-1" });
    await expect(verifyToken(newKey, after, "route", "host-1")).resolves.toMatchObject({ aud: "host-1" });
    // Once the old key is dropped, its tokens stop working.
    await expect(verifyToken(newKey, before, "route", "host-1")).rejects.toMatchObject({ id: "unauthorized" });
  });

  it("refuses another purpose, another audience, a foreign key and alg none", async () => {
    const key = await privateJwk();
    const token = await signToken(key, { purpose: "route", audience: "host-1", ttlSeconds: 60 });
    await expect(verifyToken(key, token, "command", "host-1")).rejects.toMatchObject({ id: "unauthorized" });
    await expect(verifyToken(key, token, "route", "host-2")).rejects.toMatchObject({ id: "unauthorized" });
    const foreign = await signToken(await privateJwk(), { purpose: "route", audience: "host-1", ttlSeconds: 60 });
    await expect(verifyToken(key, foreign, "route", "host-1")).rejects.toMatchObject({ id: "unauthorized" });
    const none = `${btoa(JSON.stringify({ alg: "none" }))}.${btoa(JSON.stringify({ purpose: "route", aud: "host-1", iss: "dynoplane" }))}.`.replace(/=/g, "");
    await expect(verifyToken(key, none, "route", "host-1")).rejects.toMatchObject({ id: "unauthorized" });
  });
});
