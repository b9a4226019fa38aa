import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DUMMY_PASSWORD_HASH, hashPassword, verifyPassword } from "../../src/auth/password.ts";
import { clientAddressOf, socketHost } from "../../src/services/access/sign-in-throttle.ts";
import { generateToken, hashToken, looksLikeToken, redactedToken, tokenHints, TOKEN_PREFIX } from "../../src/auth/tokens.ts";

/** Replaces the character at `i` with another character of the same base64 alphabet. */
function flipBase64(s: string, i: number): string {
  const c = s[i]!;
  return s.slice(0, i) + (c === "A" ? "B" : "A") + s.slice(i + 1);
}

describe("hashPassword / verifyPassword", () => {
  it("verifies the right password and nothing else", async () => {
    const stored = await hashPassword("correct horse battery staple");
    expect(await verifyPassword("correct horse battery staple", stored)).toBe(true);
    for (const wrong of ["correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple ", "", "x"]) {
      expect(await verifyPassword(wrong, stored)).toBe(false);
    }
  });

  it("handles unicode passwords byte for byte", async () => {
    const stored = await hashPassword("pässwörd-日本-🚀");
    expect(await verifyPassword("pässwörd-日本-🚀", stored)).toBe(true);
    expect(await verifyPassword("passwörd-日本-🚀", stored)).toBe(false);
  });

  it("stores pbkdf2-sha256 with at least 100,000 iterations, a 16-byte salt and a 32-byte hash", async () => {
    const stored = await hashPassword("secret-password");
    const [scheme, iterations, salt, hash, ...rest] = stored.split("$");
    expect(scheme).toBe("pbkdf2-sha256");
    expect(Number(iterations)).toBeGreaterThanOrEqual(100_000);
    expect(Buffer.from(salt!, "base64")).toHaveLength(16);
    expect(Buffer.from(hash!, "base64")).toHaveLength(32);
    expect(rest).toEqual([]);
    expect(stored).not.toContain("secret-password");
  });

  it("matches an independent PBKDF2 computation", async () => {
    const { pbkdf2Sync } = await import("node:crypto");
    const stored = await hashPassword("independent check");
    const [, iterations, salt, hash] = stored.split("$");
    const expected = pbkdf2Sync("independent check", Buffer.from(salt!, "base64"), Number(iterations), 32, "sha256");
    expect(Buffer.from(hash!, "base64").equals(expected)).toBe(true);
  });

  it("uses a fresh salt every time", async () => {
    const hashes = await Promise.all([1, 2, 3, 4].map(() => hashPassword("same password")));
    expect(new Set(hashes.map((h) => h.split("$")[2])).size).toBe(4);
    expect(new Set(hashes.map((h) => h.split("$")[3])).size).toBe(4);
    for (const h of hashes) expect(await verifyPassword("same password", h)).toBe(true);
  });

  it("refuses a tampered hash, salt, iteration count or scheme", async () => {
    const stored = await hashPassword("tamper-proof");
    const [scheme, iterations, salt, hash] = stored.split("$") as [string, string, string, string];
    const tampered = [
      [scheme, iterations, salt, flipBase64(hash, 0)],
      [scheme, iterations, salt, flipBase64(hash, 20)],
      [scheme, iterations, flipBase64(salt, 3), hash],
      [scheme, String(Number(iterations) + 1), salt, hash],
      ["pbkdf2-sha1", iterations, salt, hash],
      [scheme, iterations, salt],
      [scheme, iterations, "", hash],
    ];
    for (const parts of tampered) expect(await verifyPassword("tamper-proof", parts.join("$"))).toBe(false);
    expect(await verifyPassword("tamper-proof", "")).toBe(false);
    expect(await verifyPassword("tamper-proof", "tamper-proof")).toBe(false);
  });

  it("matches no password against the dummy hash", async () => {
    for (const pw of ["", "password", "AAAAAAAAAAAAAAAAAAAAAA=="]) expect(await verifyPassword(pw, DUMMY_PASSWORD_HASH)).toBe(false);
    expect(DUMMY_PASSWORD_HASH.split("$")[1]).toBe((await hashPassword("x")).split("$")[1]);
  });
});

describe("tokens", () => {
  it("generates distinct, prefixed tokens of 256 random bits", () => {
    const tokens = Array.from({ length: 500 }, generateToken);
    expect(new Set(tokens).size).toBe(500);
    for (const t of tokens) {
      expect(t.startsWith(TOKEN_PREFIX)).toBe(true);
      expect(Buffer.from(t.slice(TOKEN_PREFIX.length), "base64url")).toHaveLength(32);
      expect(looksLikeToken(t)).toBe(true);
    }
  });

  it.each([
    ["empty", ""],
    ["the prefix alone", TOKEN_PREFIX],
    ["one character short", () => generateToken().slice(0, -1)],
    ["one character long", () => generateToken() + "A"],
    ["another prefix", () => "xyz_" + generateToken().slice(4)],
    ["an upper-case prefix", () => generateToken().replace(/^dpl_/, "DPL_")],
    ["a padding character", () => generateToken().slice(0, -1) + "="],
    ["a plus sign", () => generateToken().slice(0, -1) + "+"],
    ["a trailing newline", () => generateToken() + "\n"],
    ["a leading space", () => " " + generateToken()],
    ["a UUID", "0b5e4a1c-6f7d-4c1e-9a57-1f2d3c4b5a69"],
  ])("does not take %s for a token", (_label, make) => {
    expect(looksLikeToken(typeof make === "function" ? make() : make)).toBe(false);
  });

  it("hashes a token with SHA-256", async () => {
    const token = generateToken();
    expect(await hashToken(token)).toBe(createHash("sha256").update(token).digest("hex"));
    expect(await hashToken(token)).not.toBe(await hashToken(generateToken()));
  });

  it("redacts a token to its first 8 and last 4 characters around 10 asterisks", () => {
    const token = generateToken();
    const { prefix, suffix } = tokenHints(token);
    expect(prefix).toBe(token.slice(0, 8));
    expect(suffix).toBe(token.slice(-4));
    const shown = redactedToken(prefix, suffix);
    expect(shown).toBe(`${token.slice(0, 8)}**********${token.slice(-4)}`);
    expect(shown).toHaveLength(22);
    expect(shown).not.toContain(token.slice(8, -4));
    expect(looksLikeToken(shown)).toBe(false);
  });
});

describe("clientAddressOf", () => {
  const request = (headers: Record<string, string>, cf?: Record<string, unknown>) => Object.assign(new Request("https://x.test/", { headers }), { cf });

  it.each([
    ["203.0.113.9:51234", "203.0.113.9"],
    ["[2001:db8::1]:443", "2001:db8::1"],
    ["127.0.0.1", "127.0.0.1"],
    ["2001:db8::2", "2001:db8::2"],
  ])("takes the host of the socket address %s", (address, host) => {
    expect(socketHost(address)).toBe(host);
  });

  it("believes the named header alone where a proxy sets it", () => {
    expect(clientAddressOf(request({ "CF-Connecting-IP": "198.51.100.4" }, { clientIp: "127.0.0.1:1" }), "CF-Connecting-IP")).toBe("198.51.100.4");
    expect(clientAddressOf(request({}), "CF-Connecting-IP")).toBe("unknown");
  });

  it("without one, takes the socket's address and never a header the client sent", () => {
    const forged = { "CF-Connecting-IP": "198.51.100.4", "X-Forwarded-For": "198.51.100.5" };
    expect(clientAddressOf(request(forged, { clientIp: "127.0.0.2:40000" }), "")).toBe("127.0.0.2");
    expect(clientAddressOf(request(forged), undefined)).toBe("unknown");
  });
});
