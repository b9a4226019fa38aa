import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { eq } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { builds, gitPacks } from "../../src/db/schema/index.ts";
import { concatBytes, FLUSH, pktLine } from "../../src/git/pkt-line.ts";
import { ZERO_ID } from "../../src/git/receive-pack.ts";
import { platform, tlsAgent } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { gitEnv, makeRepo, parsePushResponse, runGit } from "../support/git.ts";

afterAll(closeDb);

const basic = (token: string) => `Basic ${Buffer.from(`heroku:${token}`).toString("base64")}`;
const repoUrl = (app: string) => `${platform().apiUrl}/${app}.git`;
const withToken = (app: string, token: string) => `https://heroku:${token}@localhost:${platform().port}/${app}.git`;
const stateOf = async (appId: string) => ({
  packs: await (await db()).select().from(gitPacks).where(eq(gitPacks.appId, appId)),
  builds: await (await db()).select().from(builds).where(eq(builds.appId, appId)),
});

async function infoRefs(app: string, headers: Record<string, string> = {}, service = "git-receive-pack") {
  const res = await fetch(`${repoUrl(app)}/info/refs?service=${service}`, { headers, dispatcher: tlsAgent() });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function receivePack(app: string, account: TestAccount, body: Uint8Array, contentType = "application/x-git-receive-pack-request") {
  const res = await fetch(`${repoUrl(app)}/git-receive-pack`, {
    method: "POST",
    headers: { Authorization: basic(account.token), "Content-Type": contentType },
    body,
    dispatcher: tlsAgent(),
  });
  return { status: res.status, type: res.headers.get("content-type"), bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** A real pack of one commit, and that commit's id. */
function realPack(): { pack: Uint8Array; commit: string } {
  const { git, dir } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n" });
  const commit = git("rev-parse", "HEAD").trim();
  const pack = execFileSync("git", ["pack-objects", "--stdout", "--revs"], { cwd: dir, input: `${commit}\n` });
  return { pack: new Uint8Array(pack), commit };
}

const pushRequest = (commit: string, pack: Uint8Array, caps = "report-status side-band-64k agent=git/2.39.5") =>
  concatBytes([pktLine(`${ZERO_ID} ${commit} refs/heads/main\0${caps}\n`), FLUSH, pack]);

describe("GET /<app>.git/info/refs", () => {
  it("challenges a request without credentials, or with a bad token, with Basic", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    for (const headers of [{}, { Authorization: basic(`${owner.token}x`) }, { Authorization: basic("") }] as Record<string, string>[]) {
      const res = await infoRefs(app.name, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="dynoplane"');
    }
  });

  it("advertises capabilities^{} for an app with nothing pushed, to its owner only", async () => {
    const owner = await makeAccount();
    const other = await makeAccount();
    const app = await makeApp(owner);
    const res = await infoRefs(app.name, { Authorization: basic(owner.token) });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-git-receive-pack-advertisement");
    expect(res.text).toBe(
      `001f# service=git-receive-pack\n0000007f${ZERO_ID} capabilities^{}\0report-status side-band-64k delete-refs ofs-delta agent=dynoplane\n0000`,
    );
    const foreign = await infoRefs(app.name, { Authorization: basic(other.token) });
    expect(foreign.status).toBe(403);
    expect(foreign.text).toMatch(/You do not have access to the app/);
    expect(foreign.text).not.toContain(ZERO_ID);
    expect((await infoRefs("no-such-app-here", { Authorization: basic(owner.token) })).status).toBe(404);
  });

  it("has nothing to clone before a deploy, and lets no stranger ask", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    const res = await infoRefs(app.name, { Authorization: basic(owner.token) }, "git-upload-pack");
    expect(res.status).toBe(404);
    expect(res.text).toMatch(/no deployed git commit to clone yet/);
    expect((await infoRefs(app.name, { Authorization: basic(stranger.token) }, "git-upload-pack")).status).toBe(403);
    expect((await infoRefs(app.name, {}, "git-upload-pack")).status).toBe(401);
  });
});

describe("POST /<app>.git/git-receive-pack", () => {
  it("answers git's 4-byte probe with an empty 200", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const res = await receivePack(app.name, owner, new TextEncoder().encode("0000"));
    expect(res.status).toBe(200);
    expect(res.type).toBe("application/x-git-receive-pack-result");
    expect(res.bytes.length).toBe(0);
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
  });

  it("wants git's content type and well-formed commands", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    expect((await receivePack(app.name, owner, new TextEncoder().encode("0000"), "application/octet-stream")).status).toBe(415);
    const bad = await receivePack(app.name, owner, new TextEncoder().encode("00zzjunk"));
    expect(bad.status).toBe(400);
    expect(new TextDecoder().decode(bad.bytes)).toMatch(/bad line length/);
  });

  const packCases: Array<[string, (p: Uint8Array) => Uint8Array, RegExp]> = [
    ["a truncated pack", (p) => p.slice(0, p.length - 7), /checksum does not match/],
    ["a pack with a corrupted byte", (p) => Uint8Array.from(p, (b, i) => (i === 30 ? b ^ 0x55 : b)), /checksum does not match/],
    ["something that is not a pack", () => new TextEncoder().encode("this is not a pack at all, not even close"), /not a git pack/],
    ["no pack at all", () => new Uint8Array(0), /no pack/],
  ];

  it.each(packCases)("refuses %s with an unpack error and changes nothing", async (_label, mangle, why) => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { pack, commit } = realPack();
    const res = await receivePack(app.name, owner, pushRequest(commit, mangle(pack)));
    expect(res.status).toBe(200);
    const { progress, report } = await parsePushResponse(res.bytes);
    expect(report[0]).toMatch(/^unpack /);
    expect(report[0]).toMatch(why);
    expect(report.slice(1)).toEqual(["ng refs/heads/main unpacker error", "0000"]);
    expect(progress).toMatch(/Push rejected/);
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
    expect((await infoRefs(app.name, { Authorization: basic(owner.token) })).text).toContain("capabilities^{}");
  });

  it("reports without side-band to a client that did not ask for it", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { pack, commit } = realPack();
    const res = await receivePack(app.name, owner, pushRequest(commit, pack.slice(0, 20), "report-status"));
    const { report } = await parsePushResponse(res.bytes, false);
    expect(report).toEqual(["unpack the pack is truncated: its checksum is missing", "ng refs/heads/main unpacker error", "0000"]);
  });

  it("refuses a declared body over the size limit before reading it", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const socket = tls.connect({ host: "127.0.0.1", port: platform().port, servername: "localhost", ca: readFileSync(platform().caPath) });
    const head = [
      `POST /${app.name}.git/git-receive-pack HTTP/1.1`,
      `Host: localhost:${platform().port}`,
      `Authorization: ${basic(owner.token)}`,
      "Content-Type: application/x-git-receive-pack-request",
      `Content-Length: ${300 * 1024 * 1024}`,
      "",
      "",
    ].join("\r\n");
    const answer = await new Promise<string>((resolve, reject) => {
      let text = "";
      socket.on("secureConnect", () => socket.write(head));
      socket.on("data", (d) => {
        text += d.toString();
        if (/\r\n\r\n[\s\S]*MB/.test(text)) resolve(text);
      });
      socket.on("error", reject);
      setTimeout(() => resolve(text), 10_000);
    });
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1.1 413/);
    expect(answer).toContain("pushes may be at most 200 MB");
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
  });
});

describe("git push with real git", () => {
  it("takes a push to another branch without a build, and stores nothing", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { dir, home } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n" });
    const res = await runGit(["push", withToken(app.name, owner.token), "HEAD:refs/heads/feature"], { cwd: dir, env: gitEnv(home) });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("remote: Pushed to non-master branch, skipping build.");
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
  });

  it("refuses another account's token with git's 403 and the reason", async () => {
    const owner = await makeAccount();
    const other = await makeAccount();
    const app = await makeApp(owner);
    const { dir, home } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n" });
    const res = await runGit(["push", withToken(app.name, other.token), "main"], { cwd: dir, env: gitEnv(home) });
    expect(res.code).toBe(128);
    expect(res.stderr).toContain(`remote: You do not have access to the app ${app.name}.`);
    expect(res.stderr).toMatch(/403/);
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
  });

  it("fails authentication with a wrong token", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { dir, home } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n" });
    const res = await runGit(["push", withToken(app.name, `${owner.token}x`), "main"], { cwd: dir, env: gitEnv(home) });
    expect(res.code).toBe(128);
    expect(res.stderr).toMatch(/Authentication failed/);
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [] });
  });
});
