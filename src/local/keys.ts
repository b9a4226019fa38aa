import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import { exportJWK, generateKeyPair } from "jose";

/**
 * The control plane's Ed25519 signing key as a private JWK (JSON), made once and kept
 * in `file` (mode 0600). In production it is the COMMAND_SIGNING_KEY secret.
 */
export async function ensureSigningKey(file: string): Promise<string> {
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwk = JSON.stringify({ ...(await exportJWK(privateKey)), alg: "EdDSA" });
  await fs.writeFile(file, jwk + "\n", { mode: 0o600 });
  return jwk;
}
