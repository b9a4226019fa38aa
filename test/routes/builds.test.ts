import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, describe, expect, it } from "vitest";
import { builds } from "../../src/db/schema/index.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { putBlob, tarball, uploadSource } from "../support/sources.ts";

afterAll(closeDb);

const sha256 = (b: Uint8Array) => `SHA256:${createHash("sha256").update(b).digest("hex")}`;
const buildsOf = async (appId: string) => (await db()).select().from(builds).where(eq(builds.appId, appId));
const source = tarball({ Procfile: "web: python3 -m http.server $PORT\n", "index.html": "<h1>hello</h1>\n" });

/** Reads the first chunk of a streaming response, then hangs up. */
async function firstText(url: string): Promise<{ status: number; type: string | null; text: string }> {
  const controller = new AbortController();
  const res = await fetch(url, { dispatcher: tlsAgent(), signal: controller.signal });
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  controller.abort();
  return { status: res.status, type: res.headers.get("content-type"), text: new TextDecoder().decode(value) };
}

describe("POST /sources and its signed URLs", () => {
  it("gives put and get URLs on the API host, and the uploaded tarball reads back", async () => {
    const owner = await makeAccount();
    const created = await api("/sources", { method: "POST", token: owner.token });
    expect(created.status).toBe(201);
    const { get_url, put_url } = created.body.source_blob;
    for (const url of [get_url, put_url]) expect(url).toMatch(new RegExp(`^https://localhost:${platform().port}/blobs/sources/[0-9a-f-]{36}\\?token=`));
    expect((await fetch(get_url, { dispatcher: tlsAgent() })).status).toBe(404);
    expect((await putBlob(put_url, source)).status).toBe(200);
    const back = await fetch(get_url, { dispatcher: tlsAgent() });
    expect(back.status).toBe(200);
    expect(Buffer.from(await back.arrayBuffer()).equals(source)).toBe(true);
  });

  it("takes one upload, and each URL only for its own purpose", async () => {
    const owner = await makeAccount();
    const { get_url, put_url } = await uploadSource(owner, source);
    expect((await putBlob(put_url, source)).status).toBe(409);
    expect((await putBlob(get_url, source)).status).toBe(401);
    expect((await fetch(put_url, { dispatcher: tlsAgent() })).status).toBe(401);
    const otherId = crypto.randomUUID();
    expect((await fetch(get_url.replace(/sources\/[^?]+/, `sources/${otherId}`), { dispatcher: tlsAgent() })).status).toBe(401);
    expect((await fetch(get_url.replace(/token=.*/, "token=x"), { dispatcher: tlsAgent() })).status).toBe(401);
  });

  it("needs a token", async () => {
    const res = await api("/sources", { method: "POST" });
    expect(res.status).toBe(401);
    expect(res.body.id).toBe("unauthorized");
  });
});

describe("POST /apps/{app}/builds", () => {
  it("builds an uploaded source: pending, listed, readable, with a live output stream", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { get_url } = await uploadSource(owner, source);
    const res = await api(`/apps/${app.name}/builds`, {
      method: "POST",
      token: owner.token,
      body: { source_blob: { url: get_url, version: "v1.2", checksum: sha256(source) }, buildpacks: [{ url: "heroku/procfile" }] },
    });
    expect(res.status, res.text).toBe(201);
    expect(res.body).toMatchObject({
      app: { id: app.id },
      status: expect.stringMatching(/^(pending|failed|succeeded)$/),
      stack: "heroku-24",
      buildpacks: [{ url: "heroku/procfile", name: "heroku/procfile" }],
      source_blob: { url: get_url.split("?")[0], version: "v1.2", checksum: sha256(source) },
      user: { id: owner.id, email: owner.email },
    });
    expect(res.body.output_stream_url).toMatch(new RegExp(`^https://localhost:${platform().port}/build-output/${res.body.id}\\?token=`));

    const stream = await firstText(res.body.output_stream_url);
    expect(stream.status).toBe(200);
    expect(stream.type).toMatch(/^text\/plain/);
    expect(stream.text).toMatch(/^-----> Building on the Heroku-24 stack\n/);

    const list = await api(`/apps/${app.name}/builds`, { token: owner.token });
    expect(list.body.map((b: any) => b.id)).toEqual([res.body.id]);
    const one = await api(`/apps/${app.id}/builds/${res.body.id}`, { token: owner.token });
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(res.body.id);
    expect(one.body.output_stream_url).not.toBe(res.body.output_stream_url);
  });

  it("uses the app's buildpack installations when the request names none", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    await api(`/apps/${app.name}/buildpack-installations`, { method: "PUT", token: owner.token, body: { updates: [{ buildpack: "heroku/python" }] } });
    const { get_url } = await uploadSource(owner, source);
    const res = await api(`/apps/${app.name}/builds`, { method: "POST", token: owner.token, body: { source_blob: { url: get_url } } });
    expect(res.status, res.text).toBe(201);
    expect(res.body.buildpacks).toEqual([{ url: "heroku/python", name: "heroku/python" }]);
  });

  const cases: Array<[string, (ctx: { get_url: string; foreign: string; empty: string }) => unknown, RegExp]> = [
    ["no source_blob", () => ({}), /source_blob/],
    ["a URL anywhere else", () => ({ source_blob: { url: "https://example.com/app.tgz" } }), /get_url from POST \/sources/],
    ["our URL over plain http", (c) => ({ source_blob: { url: c.get_url.replace("https:", "http:") } }), /get_url from POST \/sources/],
    ["an internal address", () => ({ source_blob: { url: "http://127.0.0.1:5432/" } }), /get_url from POST \/sources/],
    ["not a URL", () => ({ source_blob: { url: "file:///etc/passwd" } }), /get_url from POST \/sources/],
    ["another account's source", (c) => ({ source_blob: { url: c.foreign } }), /no source of yours/],
    ["a source with nothing uploaded", (c) => ({ source_blob: { url: c.empty } }), /Nothing has been uploaded/],
    ["a checksum that does not match", (c) => ({ source_blob: { url: c.get_url, checksum: `SHA256:${"0".repeat(64)}` } }), /checksum does not match/],
    ["an unknown field", (c) => ({ source_blob: { url: c.get_url }, extra: 1 }), /Unknown field/],
    [
      "a buildpack that is neither built in, a git URL nor a path",
      (c) => ({ source_blob: { url: c.get_url }, buildpacks: [{ url: "heroku/cobol" }] }),
      /not available/,
    ],
    ["a relative buildpack path", (c) => ({ source_blob: { url: c.get_url }, buildpacks: [{ url: "/opt/../etc" }] }), /not available/],
    [
      "eleven buildpacks",
      (c) => ({ source_blob: { url: c.get_url }, buildpacks: Array.from({ length: 11 }, (_, i) => ({ url: `/opt/bp${i}` })) }),
      /source_blob|buildpacks|at most/,
    ],
  ];

  it.each(cases)("refuses %s with 422 and starts nothing", async (_label, body, message) => {
    const owner = await makeAccount();
    const other = await makeAccount();
    const app = await makeApp(owner);
    const { get_url } = await uploadSource(owner, source);
    const { get_url: foreign } = await uploadSource(other, source);
    const empty = (await api("/sources", { method: "POST", token: owner.token })).body.source_blob.get_url;
    const res = await api(`/apps/${app.name}/builds`, { method: "POST", token: owner.token, body: body({ get_url, foreign, empty }) });
    expect(res.status, res.text).toBe(422);
    expect(res.body.id).toBe("invalid_params");
    expect(res.body.message).toMatch(message);
    expect(await buildsOf(app.id)).toEqual([]);
  });

  it("keeps builds to the app's owner", async () => {
    const owner = await makeAccount();
    const other = await makeAccount();
    const app = await makeApp(owner);
    const { get_url } = await uploadSource(other, source);
    const started = await api(`/apps/${app.name}/builds`, { method: "POST", token: other.token, body: { source_blob: { url: get_url } } });
    expect(started.status).toBe(403);
    expect((await api(`/apps/${app.name}/builds`, { token: other.token })).status).toBe(403);
    expect((await api(`/apps/${app.name}/builds/${crypto.randomUUID()}`, { token: owner.token })).body).toMatchObject({ id: "not_found", resource: "build" });
    expect(await buildsOf(app.id)).toEqual([]);
  });
});

describe("/apps/{app}/buildpack-installations", () => {
  it("sets, lists and clears the app's buildpacks in order", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    expect((await api(`/apps/${app.name}/buildpack-installations`, { token: owner.token })).body).toEqual([]);
    const updates = ["urn:buildpack:heroku/nodejs", "https://github.com/heroku/heroku-buildpack-python.git#v1", "/opt/buildpacks/slow", "heroku/procfile"];
    const put = await api(`/apps/${app.name}/buildpack-installations`, {
      method: "PUT",
      token: owner.token,
      body: { updates: updates.map((buildpack) => ({ buildpack })) },
    });
    expect(put.status, put.text).toBe(200);
    const expected = ["heroku/nodejs", updates[1], updates[2], "heroku/procfile"].map((url, ordinal) => ({ ordinal, buildpack: { url, name: url } }));
    expect(put.body).toEqual(expected);
    expect((await api(`/apps/${app.name}/buildpack-installations`, { token: owner.token })).body).toEqual(expected);

    const bad = await api(`/apps/${app.name}/buildpack-installations`, {
      method: "PUT",
      token: owner.token,
      body: { updates: [{ buildpack: "heroku/python" }, { buildpack: "heroku/python" }] },
    });
    expect(bad.status).toBe(422);
    expect((await api(`/apps/${app.name}/buildpack-installations`, { token: owner.token })).body).toEqual(expected);

    const cleared = await api(`/apps/${app.name}/buildpack-installations`, { method: "PUT", token: owner.token, body: { updates: [] } });
    expect(cleared.body).toEqual([]);
    expect((await api(`/apps/${app.name}/buildpack-installations`, { token: owner.token })).body).toEqual([]);
  });
});
