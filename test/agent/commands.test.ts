import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type Agent } from "../../src/agent/index.ts";
import { slugCachePath } from "../../src/agent/slug.ts";
import { buildSlug, desiredDyno, request, tempDir, waitFor } from "./support.ts";

const hostId = randomUUID();
let privateKey: CryptoKey;
let otherKey: CryptoKey;
let agent: Agent;
let workDir: string;
let slug: string;

interface Claims {
  aud?: string;
  sub?: string;
  jti?: string | null;
  iat?: number;
  exp?: number;
  key?: CryptoKey;
  iss?: string;
  purpose?: string;
}

/**
 * A token as the control plane signs it (a route token when it names a dyno, else a command
 * token); every claim can be bent for a refusal case.
 */
async function sign(c: Claims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({ purpose: c.purpose ?? (c.sub ? "route" : "command") })
    .setProtectedHeader({ alg: "EdDSA" })
    .setIssuer(c.iss ?? "dynoplane")
    .setAudience(c.aud ?? hostId)
    .setIssuedAt(c.iat ?? now)
    .setExpirationTime(c.exp ?? now + 60);
  if (c.sub) jwt.setSubject(c.sub);
  if (c.jti !== null) jwt.setJti(c.jti ?? randomUUID());
  return jwt.sign(c.key ?? privateKey);
}

/** An unsigned token (`alg: none`) with otherwise perfect claims. */
function unsigned(c: { sub?: string } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (v: object) => base64url.encode(JSON.stringify(v));
  return `${enc({ alg: "none" })}.${enc({ aud: hostId, sub: c.sub, iat: now, exp: now + 60, jti: randomUUID() })}.`;
}

/** A good token whose payload was swapped for another (here: a different audience). */
async function tampered(c: { sub?: string } = {}): Promise<string> {
  const [header, , sig] = (await sign(c)).split(".");
  const [, payload] = (await sign({ ...c, aud: randomUUID() })).split(".");
  return `${header}.${payload}.${sig}`;
}

const command = (token: string | undefined, body: unknown = { op: "sync" }) =>
  request(
    agent.port,
    "POST",
    "/commands",
    token === undefined ? { "content-type": "application/json" } : { authorization: `Bearer ${token}`, "content-type": "application/json" },
    JSON.stringify(body),
  );
const proxied = (dynoId: string, token: string | undefined, p = "/headers", method = "GET", body?: string) =>
  request(agent.port, method, `/proxy/${dynoId}${p}`, token === undefined ? {} : { "x-dynoplane-route": token }, body);

beforeAll(async () => {
  ({ privateKey } = await generateKeyPair("EdDSA", { extractable: true }));
  ({ privateKey: otherKey } = await generateKeyPair("EdDSA"));
  workDir = tempDir("dynoplane-agent-");
  slug = buildSlug();
  agent = await startAgent({ workDir, listenHost: "127.0.0.1", listenPort: 0, commandKey: await publicJwk(), hostId, stopGraceMs: 2_000, log: () => {} });
});

afterAll(async () => {
  await agent?.stop();
  rmSync(workDir, { recursive: true, force: true });
  rmSync(path.dirname(slug), { recursive: true, force: true });
});

/** The public half of the signing key, as the heartbeat response would carry it. */
async function publicJwk(): Promise<JsonWebKey> {
  const { d: _private, ...pub } = await exportJWK(privateKey);
  return pub as JsonWebKey;
}

const refusals: [string, (sub?: string) => Promise<string | undefined> | string | undefined][] = [
  ["no token", () => undefined],
  ["a token that is not a JWT", () => "not-a-jwt"],
  ["a tampered token", (sub) => tampered({ sub })],
  ["a token for another host", (sub) => sign({ sub, aud: randomUUID() })],
  ["an expired token", (sub) => sign({ sub, iat: Math.floor(Date.now() / 1000) - 180, exp: Math.floor(Date.now() / 1000) - 120 })],
  ["a token older than 60 s that has not expired", (sub) => sign({ sub, iat: Math.floor(Date.now() / 1000) - 120 })],
  ["an unsigned token (alg: none)", (sub) => unsigned({ sub })],
  ["a token signed by another key", (sub) => sign({ sub, key: otherKey })],
  ["a token without a jti", (sub) => sign({ sub, jti: null })],
  ["a token of another issuer", (sub) => sign({ sub, iss: "someone-else" })],
  ["a token for another purpose (an upload URL's)", (sub) => sign({ sub, purpose: "slug-upload" })],
];

describe("POST /commands", () => {
  it.each(refusals)("refuses %s", async (_label, token) => {
    const res = await command(await token());
    expect(res.status).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ id: "unauthorized" });
  });

  it("accepts a good token once, and refuses its replay", async () => {
    const token = await sign();
    expect((await command(token)).status).toBe(202);
    expect((await command(token)).status).toBe(401);
  });

  it("refuses a route token presented as a command token", async () => {
    const route = await sign({ sub: randomUUID() });
    expect((await command(route)).status).toBe(401);
    expect((await command(await sign({ purpose: "route" }))).status).toBe(401);
  });

  it("refuses a body that is not a command, after checking the token", async () => {
    expect((await command(await sign(), { op: "explode" })).status).toBe(400);
    expect((await command(undefined, { op: "explode" })).status).toBe(401);
  });
});

describe("ANY /proxy/:dynoId/*", () => {
  const dyno = desiredDyno({ env: { VERSION: "1" } });

  beforeAll(async () => {
    // The slug is already in the agent's cache, so the start needs no control plane.
    mkdirSync(path.dirname(slugCachePath(workDir, dyno.slug_id)), { recursive: true });
    copyFileSync(slug, slugCachePath(workDir, dyno.slug_id));
    expect((await command(await sign(), { op: "start", dyno })).status).toBe(202);
    await waitFor("the dyno up", () => agent.supervisor.activeTarget(dyno.id));
  });

  it.each(refusals)("refuses %s", async (_label, token) => {
    const res = await proxied(dyno.id, await token(dyno.id));
    expect(res.status).toBe(401);
  });

  it("refuses a command token presented as a route token", async () => {
    expect((await proxied(dyno.id, await sign({ sub: dyno.id, purpose: "command" }))).status).toBe(401);
  });

  it("refuses a token for another dyno", async () => {
    expect((await proxied(dyno.id, await sign({ sub: randomUUID() }))).status).toBe(401);
    expect((await proxied(dyno.id, await sign())).status).toBe(401); // no subject at all
  });

  it("forwards a good request with its path and query, without the route token", async () => {
    const token = await sign({ sub: dyno.id });
    const res = await proxied(dyno.id, token, "/headers/a/b?x=1&y=2");
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe("/headers/a/b?x=1&y=2");
    expect(seen.headers["x-dynoplane-route"]).toBeUndefined();
  });

  it("takes a route token again until it expires (the router reuses one), only for its own dyno", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await sign({ sub: dyno.id, iat: now, exp: now + 1 });
    for (let i = 0; i < 3; i++) expect((await proxied(dyno.id, token, "/headers/x")).status).toBe(200);
    // Remembered as verified, yet still a pass to that dyno alone.
    const other = randomUUID();
    expect((await proxied(other, token)).status).toBe(401);
    // Past its expiry and the 5 s allowed for clock drift.
    await new Promise((r) => setTimeout(r, (now + 1 + 5) * 1000 - Date.now() + 200));
    expect((await proxied(dyno.id, token, "/headers/x")).status).toBe(401);
  }, 15_000);

  it("answers a request slower than the connect timeout on a kept-alive connection to the dyno", async () => {
    const token = await sign({ sub: dyno.id });
    expect((await proxied(dyno.id, token)).status).toBe(200); // opens the connection the next request reuses
    const res = await request(agent.port, "POST", `/proxy/${dyno.id}/sh`, { "x-dynoplane-route": token }, "sleep 6; echo done", 15_000);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ status: 0, stdout: "done\n" });
  }, 20_000);

  it("streams a request body to the dyno and its response back", async () => {
    const body = "z".repeat(3 * 1024 * 1024);
    const res = await proxied(dyno.id, await sign({ sub: dyno.id }), "/echo", "POST", body);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(body.length);
  });

  it("answers 502 for a dyno that is not running here, and after a stop command", async () => {
    const ghost = randomUUID();
    expect((await proxied(ghost, await sign({ sub: ghost }))).status).toBe(502);
    expect((await command(await sign(), { op: "stop", dyno_id: dyno.id })).status).toBe(202);
    await waitFor("the dyno gone", () => agent.supervisor.activeTarget(dyno.id) === undefined);
    expect((await proxied(dyno.id, await sign({ sub: dyno.id }))).status).toBe(502);
  });
});
