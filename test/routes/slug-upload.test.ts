import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { MAX_SLUG_BYTES } from "../../src/services/apps/slugs.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { destroyApp, slugArchive, webProcessTypes } from "../support/slugs.ts";

afterAll(closeDb);

/**
 * A gzipped tar built by the system tar in a temp dir holding `app/server.js`; `build`
 * adds more and `args` are tar's (members last).
 */
function slugOf(build: (root: string) => void = () => {}, args: string[] = ["./app"]): Buffer {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bad-slug-"));
  try {
    mkdirSync(path.join(root, "app"));
    writeFileSync(path.join(root, "app", "server.js"), "console.log('hi')\n");
    build(root);
    execFileSync("tar", ["-czf", path.join(root, "slug.tgz"), ...args], { cwd: root, stdio: ["ignore", "ignore", "pipe"] });
    return readFileSync(path.join(root, "slug.tgz"));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** A new slug of the app through the Slug API, with its signed upload URL. */
async function newSlug(owner: TestAccount, app: string): Promise<{ id: string; url: string }> {
  const res = await api(`/apps/${app}/slugs`, { method: "POST", token: owner.token, body: { process_types: webProcessTypes(app) } });
  expect(res.status, res.text).toBe(201);
  return { id: res.body.id, url: res.body.blob.url };
}

/** PUTs a tarball to a signed upload URL, as the heroku CLI's slug upload does. */
async function upload(url: string, body: Buffer): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: "PUT", body, headers: { "Content-Type": "application/gzip" }, dispatcher: tlsAgent() });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** What a refused upload must leave unchanged: the app's releases and formation. */
async function appState(owner: TestAccount, app: string) {
  const releases = await api(`/apps/${app}/releases`, { token: owner.token });
  const formation = await api(`/apps/${app}/formation`, { token: owner.token });
  expect(releases.status).toBe(200);
  expect(formation.status).toBe(200);
  return { releases: releases.body, formation: formation.body };
}

/** Asserts a slug is still un-uploaded and that releasing it is refused. */
async function expectUnreleasable(owner: TestAccount, app: string, slugId: string) {
  const slug = await api(`/apps/${app}/slugs/${slugId}`, { token: owner.token });
  expect(slug.status).toBe(200);
  expect(slug.body.size).toBeNull();
  expect(slug.body.checksum).toBeNull();
  const release = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body: { slug: slugId } });
  expect(release.status, release.text).toBe(422);
  expect(release.body).toEqual({ id: "invalid_params", message: "That slug has not been uploaded yet." });
}

/** A PUT whose Content-Length claims more than the limit; the answer comes before any body is sent. */
function putClaimingLength(url: string, length: number): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: "PUT",
      headers: { "Content-Type": "application/gzip", "Content-Length": String(length) },
      ca: readFileSync(platform().caPath),
      lookup: (_host, _opts, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]),
    });
    req.on("error", reject);
    req.on("response", (res) => {
      let text = "";
      res.on("data", (b: Buffer) => (text += b.toString()));
      res.on("end", () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
      });
    });
    req.flushHeaders();
  });
}

const out = (root: string, name: string) => path.join(root, "app", name);

describe("PUT /blobs/slugs/{id} refuses malformed slugs", () => {
  it.each<[string, () => Buffer, number, RegExp]>([
    ["an uncompressed tar", () => execFileSync("gzip", ["-dc"], { input: slugArchive() }), 422, /it is not gzip-compressed/],
    ["gzipped text", () => execFileSync("gzip", ["-c"], { input: "not a tarball\n".repeat(200) }), 422, /it is not a tar archive/],
    ["a truncated slug", () => slugArchive().subarray(0, Math.floor(slugArchive().length / 2)), 422, /(gzip stream is corrupt or truncated|it is truncated)/],
    ["a slug missing its gzip trailer", () => slugArchive().subarray(0, slugArchive().length - 8), 422, /its gzip stream is corrupt or truncated/],
    [
      "a slug with data after its gzip stream",
      () => Buffer.concat([slugArchive(), Buffer.from("trailing junk")]),
      422,
      /its gzip stream is corrupt or truncated/,
    ],
    [
      "a '../' member",
      () => slugOf((r) => writeFileSync(out(r, "evil"), "x"), ["-P", "--transform", "s,^app/evil$,../evil,", "app"]),
      422,
      /entry "\.\.\/evil" has a '\.\.' path segment/,
    ],
    [
      "an absolute member",
      () => slugOf((r) => writeFileSync(out(r, "evil"), "x"), ["-P", "--transform", "s,^app/evil$,/tmp/evil,", "app"]),
      422,
      /entry "\/tmp\/evil" is an absolute path/,
    ],
    ["a member outside ./app", () => slugOf((r) => mkdirSync(path.join(r, "etc")), ["./app", "./etc"]), 422, /entry "\.\/etc\/" is outside \.\/app/],
    ["a symlink out of the tree", () => slugOf((r) => symlinkSync("../../etc/passwd", out(r, "evil"))), 422, /symlink "\.\/app\/evil" points outside \.\/app/],
    [
      "an absolute symlink",
      () => slugOf((r) => symlinkSync("/etc/passwd", out(r, "evil"))),
      422,
      /symlink "\.\/app\/evil" points to the absolute path "\/etc\/passwd"/,
    ],
    [
      "a hard link out of the tree",
      () =>
        slugOf(
          (r) => execFileSync("ln", [out(r, "server.js"), out(r, "hl")]),
          ["-P", "--transform", "s,^app/server.js$,/etc/passwd,RSh", "app/server.js", "app/hl"],
        ),
      422,
      /hard link "app\/hl" points outside \.\/app \(to "\/etc\/passwd"\)/,
    ],
    ["a FIFO", () => slugOf((r) => execFileSync("mkfifo", [out(r, "pipe")])), 422, /entry "\.\/app\/pipe" is a FIFO/],
    [
      "a slug that unpacks past the limit",
      () => slugOf((r) => (writeFileSync(out(r, "zeros"), ""), truncateSync(out(r, "zeros"), MAX_SLUG_BYTES + 1))),
      413,
      /it unpacks to more than 500 MB/,
    ],
  ])(
    "%s",
    async (_what, make, status, message) => {
      // Made first: building a big slug blocks this process for seconds, and a kept-alive
      // connection idle for longer than the server keeps it (5 s) would be reused closed.
      const tarball = make();
      const owner = await makeAccount();
      const { name: app } = await makeApp(owner);
      const before = await appState(owner, app);
      const slug = await newSlug(owner, app);
      const res = await upload(slug.url, tarball);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body.id).toBe(status === 413 ? "payload_too_large" : "invalid_params");
      expect(res.body.message).toMatch(/^The slug was refused: /);
      expect(res.body.message).toMatch(message);
      await expectUnreleasable(owner, app, slug.id);
      expect(await appState(owner, app)).toEqual(before);
    },
    60_000,
  );

  it("a Content-Length past the limit, before reading the body", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    const slug = await newSlug(owner, app);
    const res = await putClaimingLength(slug.url, MAX_SLUG_BYTES + 1);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ id: "payload_too_large", message: "Slugs may be at most 500 MB." });
    await expectUnreleasable(owner, app, slug.id);
  });
});

describe("PUT /blobs/slugs/{id} after a refusal", () => {
  it("takes a good slug on the same URL, which then releases", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    try {
      const slug = await newSlug(owner, app);
      const bad = await upload(
        slug.url,
        slugOf((r) => symlinkSync("/", out(r, "root"))),
      );
      expect(bad.status).toBe(422);
      await expectUnreleasable(owner, app, slug.id);
      const good = await upload(slug.url, slugArchive());
      expect(good.status, JSON.stringify(good.body)).toBe(200);
      const stored = await api(`/apps/${app}/slugs/${slug.id}`, { token: owner.token });
      expect(stored.body.size).toBe(slugArchive().length);
      expect(stored.body.checksum).toMatch(/^SHA256:[0-9a-f]{64}$/);
      const again = await upload(slug.url, slugArchive());
      expect(again.status).toBe(409);
      const release = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body: { slug: slug.id } });
      expect(release.status, release.text).toBe(201);
      const formation = await api(`/apps/${app}/formation`, { token: owner.token });
      expect(formation.body.map((f: { type: string }) => f.type)).toEqual(["web"]);
    } finally {
      await destroyApp(owner.token, app);
    }
  });
});
