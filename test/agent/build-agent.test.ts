import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type Agent } from "../../src/agent/index.ts";
import { BUILD_OUTPUT, BUILD_RESULT, type BuildResult, type BuildSpec } from "../../src/protocol/build.ts";
import { appDir, buildSpec, cleanupBuildDirs, commit, pack } from "./build-support.ts";
import { request, tempDir, waitFor } from "./support.ts";

/**
 * The agent's side of the build contract (src/protocol/build.ts) over HTTP: a small server
 * speaks the control plane's endpoints, exactly as the contract words them, and the agent
 * receives signed `build` commands.
 */

const SECRET = "host-secret-for-builds";
const hostId = randomUUID();
let privateKey: CryptoKey;
let publicJwk: JsonWebKey;
let agent: Agent;
let server: http.Server;
let workDir: string;

interface Seen {
  source?: Buffer;
  packs?: Buffer[];
  batches: { at: number; lines: string[] }[];
  slug?: { body: Buffer; length: number; processTypes: unknown; slugId: string };
  results: BuildResult[];
  unauthorized: number;
}
const builds = new Map<string, Seen>();

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function controlPlane(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url!, "http://x");
  if (url.pathname === "/internal/hosts/heartbeat") {
    await readBody(req);
    return void res.end(JSON.stringify({ host_id: hostId, command_key: publicJwk, desired: [], heartbeat_interval_ms: 60_000 }));
  }
  const m = /^\/internal\/hosts\/builds\/([^/]+)\/(source|packs\/(\d+)|output|slug|result)$/.exec(url.pathname);
  const seen = m && builds.get(m[1]!);
  if (!m || !seen) return void res.writeHead(404).end();
  if (req.headers.authorization !== `Bearer ${SECRET}`) {
    seen.unauthorized++;
    return void res.writeHead(401).end();
  }
  const body = await readBody(req);
  if (m[2] === "source" && req.method === "GET") {
    if (seen.packs) return void res.end(JSON.stringify({ packs: seen.packs.map((p, seq) => ({ seq, size: p.length })) }));
    return void res.writeHead(200, { "content-type": "application/gzip" }).end(seen.source);
  }
  if (m[3] !== undefined && req.method === "GET") return void res.end(seen.packs![Number(m[3])]);
  if (m[2] === "output" && req.method === "POST") {
    seen.batches.push({ at: Date.now(), lines: BUILD_OUTPUT.parse(JSON.parse(body.toString())).lines });
    return void res.writeHead(204).end();
  }
  if (m[2] === "slug" && req.method === "PUT") {
    const slugId = randomUUID();
    seen.slug = { body, length: Number(req.headers["content-length"]), processTypes: JSON.parse(url.searchParams.get("process_types")!), slugId };
    return void res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ slug_id: slugId }));
  }
  if (m[2] === "result" && req.method === "POST") {
    seen.results.push(BUILD_RESULT.parse(JSON.parse(body.toString())));
    return void res.writeHead(204).end();
  }
  res.writeHead(405).end();
}

async function sendBuild(spec: BuildSpec): Promise<number> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ purpose: "command" })
    .setProtectedHeader({ alg: "EdDSA" })
    .setIssuer("dynoplane")
    .setAudience(hostId)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(randomUUID())
    .sign(privateKey);
  const res = await request(
    agent.port,
    "POST",
    "/commands",
    { authorization: `Bearer ${token}`, "content-type": "application/json" },
    JSON.stringify({ op: "build", build: spec }),
  );
  return res.status;
}

beforeAll(async () => {
  ({ privateKey } = await generateKeyPair("EdDSA", { extractable: true }));
  const { d: _d, ...pub } = await exportJWK(privateKey);
  publicJwk = pub as JsonWebKey;
  server = http.createServer((req, res) => void controlPlane(req, res).catch(() => res.writeHead(500).end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  workDir = tempDir("dynoplane-agent-builds-");
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  agent = await startAgent({ workDir, controlPlaneUrl: url, hostSecret: SECRET, listenHost: "127.0.0.1", listenPort: 0, heartbeatMs: 60_000, log: () => {} });
  await agent.heartbeat();
});

afterAll(async () => {
  await agent?.stop();
  server?.close();
  cleanupBuildDirs();
  rmSync(workDir, { recursive: true, force: true });
});

describe("build commands", () => {
  it("builds a tarball: source fetched, output streamed, slug uploaded with its process types, result reported", async () => {
    const src = appDir({ Procfile: "web: ./serve.sh\n", "serve.sh": "#!/bin/sh\nexec sleep 100\n" });
    const spec = buildSpec();
    builds.set(spec.id, { source: execFileSync("tar", ["-cz", "-C", src, "."]), batches: [], results: [], unauthorized: 0 });
    expect(await sendBuild(spec)).toBe(202);
    // The same build sent again (a retried command) is not built twice.
    expect(await sendBuild(spec)).toBe(202);
    const seen = builds.get(spec.id)!;
    await waitFor("the build result", () => seen.results.length > 0, 20_000);
    await new Promise((r) => setTimeout(r, 300));

    expect(seen.results).toHaveLength(1);
    expect(seen.unauthorized).toBe(0);
    expect(seen.results[0]).toEqual({
      status: "succeeded",
      slug_id: seen.slug!.slugId,
      error: null,
      process_types: { web: "./serve.sh" },
      buildpack_provided_description: "Procfile",
      detected_buildpack: "heroku/procfile",
    });
    expect(seen.slug!.processTypes).toEqual({ web: "./serve.sh" });
    expect(seen.slug!.length).toBe(seen.slug!.body.length);
    const slugPath = path.join(workDir, "received.tgz");
    writeFileSync(slugPath, seen.slug!.body);
    expect(execFileSync("tar", ["-tzf", slugPath], { encoding: "utf8" }).split("\n")).toEqual(expect.arrayContaining(["./app/Procfile", "./app/serve.sh"]));
    const lines = seen.batches.flatMap((b) => b.lines);
    expect(lines).toEqual(expect.arrayContaining(["-----> Procfile app detected", "       Procfile declares types -> web", "-----> Compressing..."]));
  });

  it("builds a git push: the packs listed by the source endpoint, replayed in order", async () => {
    const repo = path.join(tempDir("dynoplane-agent-repo-"), "app");
    const packDir = tempDir("dynoplane-agent-packs-");
    const a = commit(repo, { Procfile: "web: ./serve.sh\n", "serve.sh": "#!/bin/sh\n", "v.txt": "1\n" });
    const b = commit(repo, { "v.txt": "2\n", Procfile: "web: ./serve.sh\nworker: ./serve.sh --work\n" });
    const packs = [pack(repo, [a], path.join(packDir, "0.pack")), pack(repo, [b, `^${a}`], path.join(packDir, "1.pack"), true)].map((f) => readFileSync(f));
    const spec = buildSpec({ kind: "git", commit: b });
    builds.set(spec.id, { packs, batches: [], results: [], unauthorized: 0 });
    expect(await sendBuild(spec)).toBe(202);
    const seen = builds.get(spec.id)!;
    await waitFor("the build result", () => seen.results.length > 0, 20_000);
    expect(seen.results[0]).toMatchObject({ status: "succeeded", process_types: { web: "./serve.sh", worker: "./serve.sh --work" } });
    rmSync(path.dirname(repo), { recursive: true, force: true });
    rmSync(packDir, { recursive: true, force: true });
  });

  it("reports a failed build with its reason, after its output", async () => {
    const src = appDir({ Procfile: "web ./serve.sh\n" });
    const spec = buildSpec();
    builds.set(spec.id, { source: execFileSync("tar", ["-cz", "-C", src, "."]), batches: [], results: [], unauthorized: 0 });
    expect(await sendBuild(spec)).toBe(202);
    const seen = builds.get(spec.id)!;
    await waitFor("the build result", () => seen.results.length > 0, 20_000);
    expect(seen.results[0]).toMatchObject({
      status: "failed",
      slug_id: null,
      error: "Procfile line 1 is malformed (expected `<process type>: <command>`): web ./serve.sh",
    });
    expect(seen.slug).toBeUndefined();
    expect(seen.batches.flatMap((b) => b.lines)).toContain(` !     ${seen.results[0]!.error}`);
  });
});
