import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { eq } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { apps, releases } from "../../src/db/schema/index.ts";
import { assignBuildHost, insertBuild } from "../../src/services/builds/records.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { sourceBlobKey } from "../../src/services/builds/sources.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { destroyApp, slugArchive, visit, waitFor, webProcessTypes } from "../support/slugs.ts";
import { tarball, uploadSource } from "../support/sources.ts";

// The build protocol as a host agent speaks it (src/protocol/build.ts), from hosts
// registered here. They are never up and offer no memory, so nothing is placed on them.

afterAll(closeDb);

const unique = () => Math.random().toString(36).slice(2, 10);
async function registerHost() {
  const { host, secret } = await createHost(await db(), `test-builder-${unique()}`);
  return { id: host.id, secret };
}

/** A pending tarball build of an uploaded source, assigned to `hostId`, as the control plane would have dispatched it. */
async function assignedBuild(owner: TestAccount, hostId: string) {
  const app = await makeApp(owner);
  const source = tarball({ Procfile: "web: node server.js\n" });
  const { get_url } = await uploadSource(owner, source);
  const sourceId = /sources\/([^?]+)/.exec(get_url)![1]!;
  const [row] = await (await db()).select().from(apps).where(eq(apps.id, app.id));
  const build = await insertBuild(
    await db(),
    row!,
    { accountId: owner.id, email: owner.email },
    {
      kind: "tarball",
      commit: null,
      sourceBlobKey: sourceBlobKey(sourceId),
      sourceUrl: get_url.split("?")[0]!,
      sourceId,
      buildpacks: [],
    },
  );
  await assignBuildHost(await db(), build.id, hostId);
  return { app, build, source };
}

async function call(secret: string | null, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${platform().apiUrl}/internal/hosts/builds${path}`, {
    method,
    headers: {
      ...(secret ? { Authorization: `Bearer ${secret}` } : {}),
      ...(body instanceof Uint8Array ? {} : body !== undefined ? { "Content-Type": "application/json" } : {}),
      ...headers,
    },
    body: body instanceof Uint8Array ? body : body !== undefined ? JSON.stringify(body) : undefined,
    dispatcher: tlsAgent(),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, bytes, text: bytes.toString("utf8") };
}

const versions = async (appId: string) => (await (await db()).select().from(releases).where(eq(releases.appId, appId))).map((r) => r.version).sort();
const success = (slugId: string | null) => ({
  status: "succeeded",
  slug_id: slugId,
  error: null,
  process_types: {},
  buildpack_provided_description: "Node.js",
});

describe("/internal/hosts/builds/:id", () => {
  it("is open only to the host the build was assigned to", async () => {
    const owner = await makeAccount();
    const assigned = await registerHost();
    const other = await registerHost();
    const { build } = await assignedBuild(owner, assigned.id);
    for (const [method, path, body] of [
      ["GET", `/${build.id}/source`],
      ["GET", `/${build.id}/packs/1`],
      ["POST", `/${build.id}/output`, { lines: ["intruder"] }],
      ["PUT", `/${build.id}/slug`, new Uint8Array([1, 2, 3])],
      ["POST", `/${build.id}/result`, success(null)],
    ] as const) {
      expect((await call(other.secret, method, path, body)).status, `${method} ${path} by another host`).toBe(404);
      expect((await call(null, method, path, body)).status, `${method} ${path} without a secret`).toBe(401);
    }
    expect((await call(assigned.secret, "GET", `/${crypto.randomUUID()}/source`)).status).toBe(404);
    const read = await api(`/apps/${build.appId}/builds/${build.id}`, { token: owner.token });
    expect(read.body.status).toBe("pending");
  });

  it("serves the source, takes output, the slug and a success: the release is cut and the app runs it", async () => {
    const owner = await makeAccount();
    const host = await registerHost();
    const { app, build, source } = await assignedBuild(owner, host.id);
    try {
      const fetched = await call(host.secret, "GET", `/${build.id}/source`);
      expect(fetched.status).toBe(200);
      expect(fetched.bytes.equals(source)).toBe(true);

      expect((await call(host.secret, "POST", `/${build.id}/output`, { lines: ["-----> Node.js app detected", "       installing"] })).status).toBe(204);
      const streamUrl = (await api(`/apps/${app.name}/builds/${build.id}`, { token: owner.token })).body.output_stream_url;

      const slug = slugArchive();
      const processTypes = encodeURIComponent(JSON.stringify(webProcessTypes(app.name)));
      const uploaded = await call(host.secret, "PUT", `/${build.id}/slug?process_types=${processTypes}`, new Uint8Array(slug));
      expect(uploaded.status, uploaded.text).toBe(201);
      const slugId = JSON.parse(uploaded.text).slug_id;
      expect((await call(host.secret, "PUT", `/${build.id}/slug?process_types=${processTypes}`, new Uint8Array(slug))).status).toBe(409);

      expect((await call(host.secret, "POST", `/${build.id}/result`, success(slugId))).status).toBe(204);
      const done = await api(`/apps/${app.name}/builds/${build.id}`, { token: owner.token });
      expect(done.body).toMatchObject({ status: "succeeded", slug: { id: slugId }, release: { id: expect.any(String) } });
      expect(await versions(app.id)).toEqual([1, 2]);
      const output = await (await fetch(streamUrl, { dispatcher: tlsAgent() })).text();
      expect(output).toBe(
        [
          "-----> Node.js app detected",
          "       installing",
          "-----> Launching...",
          "       Released v2",
          `       https://${app.name}.apps.localhost:${platform().port}/ deployed to dynoplane`,
          "",
          "",
        ].join("\n"),
      );
      await waitFor("the released slug to answer", async () => (await visit(app.name)).json?.dyno === "web.1", 90_000);

      // A repeated report changes nothing; output after the end is refused.
      expect((await call(host.secret, "POST", `/${build.id}/result`, success(slugId))).status).toBe(204);
      expect(await versions(app.id)).toEqual([1, 2]);
      expect((await call(host.secret, "POST", `/${build.id}/output`, { lines: ["late"] })).status).toBe(409);
    } finally {
      await destroyApp(owner.token, app.name);
    }
  });

  it.each([
    [
      "a failed result",
      (_slug: string | null) => ({ ...success(null), status: "failed", error: "Procfile line 1 is malformed" }),
      /Procfile line 1 is malformed/,
    ],
    ["success without an uploaded slug", () => success(null), /without uploading its slug/],
    ["success naming another slug", () => success(crypto.randomUUID()), /without uploading its slug/],
    [
      "process types a dyno cannot run",
      (slug: string | null) => ({ ...success(slug), process_types: { "bad type!": "x" } }),
      /could not be released: Invalid process type/,
    ],
  ])("ends the build failed on %s, and nothing is released", async (_label, result, error) => {
    const owner = await makeAccount();
    const host = await registerHost();
    const { app, build } = await assignedBuild(owner, host.id);
    const wantsSlug = _label.includes("process types");
    let slugId: string | null = null;
    if (wantsSlug) {
      const put = await call(host.secret, "PUT", `/${build.id}/slug`, new Uint8Array(slugArchive()));
      slugId = JSON.parse(put.text).slug_id;
    }
    expect((await call(host.secret, "POST", `/${build.id}/result`, result(slugId))).status).toBe(204);
    const read = await api(`/apps/${app.name}/builds/${build.id}`, { token: owner.token });
    expect(read.body).toMatchObject({ status: "failed", release: null });
    const [row] = await (await db()).select().from(apps).where(eq(apps.id, app.id));
    expect(row!.releaseSeq).toBe(1);
    const output = await (await fetch(read.body.output_stream_url, { dispatcher: tlsAgent() })).text();
    expect(output).toMatch(error);
  });

  it("refuses a slug the Slug API would refuse (a link out of ./app), and a later good one is taken", async () => {
    const owner = await makeAccount();
    const host = await registerHost();
    const { build } = await assignedBuild(owner, host.id);
    const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bad-slug-"));
    mkdirSync(path.join(root, "app"));
    symlinkSync("/etc/passwd", path.join(root, "app", "passwd"));
    execFileSync("tar", ["-czf", path.join(root, "bad.tgz"), "-C", root, "./app"]);
    const bad = readFileSync(path.join(root, "bad.tgz"));
    rmSync(root, { recursive: true, force: true });
    const refused = await call(host.secret, "PUT", `/${build.id}/slug`, new Uint8Array(bad));
    expect(refused.status).toBe(422);
    expect(JSON.parse(refused.text)).toEqual({
      id: "invalid_params",
      message: 'The slug was refused: symlink "./app/passwd" points to the absolute path "/etc/passwd".',
    });
    const good = await call(host.secret, "PUT", `/${build.id}/slug`, new Uint8Array(slugArchive()));
    expect(good.status).toBe(201);
  });

  it("wants a Content-Length and an object of process types with a slug", async () => {
    const owner = await makeAccount();
    const host = await registerHost();
    const { build } = await assignedBuild(owner, host.id);
    expect((await call(host.secret, "PUT", `/${build.id}/slug?process_types=%5B1%5D`, new Uint8Array([1]))).status).toBe(422);
    expect((await call(host.secret, "PUT", `/${build.id}/slug?process_types=nope`, new Uint8Array([1]))).status).toBe(422);
    expect((await call(host.secret, "POST", `/${build.id}/output`, { lines: "not a list" })).status).toBe(422);
  });
});
