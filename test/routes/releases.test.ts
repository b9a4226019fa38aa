import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { deploySlug } from "../support/slugs.ts";

afterAll(closeDb);

interface Release {
  id: string;
  version: number;
  description: string;
  current: boolean;
  status: string;
  eligible_for_rollback: boolean;
}

const list = (account: TestAccount, app: string, range?: string) =>
  api<Release[]>(`/apps/${app}/releases`, { token: account.token, headers: range === undefined ? {} : { Range: range } });

const config = async (account: TestAccount, app: string) => (await api(`/apps/${app}/config-vars`, { token: account.token })).body;

/** An owner and an app with `count` releases: v1 plus one config change (STEP=<n>) per later version. */
async function appWithReleases(count: number) {
  const owner = await makeAccount();
  const { name: app } = await makeApp(owner);
  for (let v = 2; v <= count; v++) {
    const res = await api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: { STEP: String(v) } });
    expect(res.status).toBe(200);
  }
  return { owner, app };
}

const versions = (body: Release[]) => body.map((r) => r.version);
const range = (from: number, to: number) =>
  from <= to ? Array.from({ length: to - from + 1 }, (_, i) => from + i) : Array.from({ length: from - to + 1 }, (_, i) => from - i);

describe("GET /apps/{app}/releases", () => {
  it("lists every release oldest first, with only the newest current", async () => {
    const { owner, app } = await appWithReleases(4);
    const res = await list(owner, app);
    expect(res.status).toBe(200);
    expect(versions(res.body)).toEqual([1, 2, 3, 4]);
    expect(res.body.map((r) => r.current)).toEqual([false, false, false, true]);
    expect(res.body[0]!.description).toBe("Initial release");
    expect(res.body[3]).toMatchObject({
      description: "Set STEP config vars",
      status: "succeeded",
      // Nothing has been deployed, so there is no code to roll back to.
      eligible_for_rollback: false,
      app: { name: app },
      user: { id: owner.id, email: owner.email },
    });
    expect(res.headers.get("next-range")).toBeNull();
  });

  it("pages `version ..; max=15, order=desc` (heroku releases) and Next-Range gives the rest once", async () => {
    const { owner, app } = await appWithReleases(17);
    const first = await list(owner, app, "version ..; max=15, order=desc");
    expect(first.status).toBe(206);
    expect(versions(first.body)).toEqual(range(17, 3));
    expect(first.body[0]!.current).toBe(true);
    const next = first.headers.get("next-range")!;
    expect(next).toBeTruthy();

    const second = await list(owner, app, next);
    expect(second.status).toBe(200);
    expect(second.headers.get("next-range")).toBeNull();
    expect(versions(second.body)).toEqual([2, 1]);

    const all = [...first.body, ...second.body].map((r) => r.id);
    expect(new Set(all).size).toBe(17);
  });

  it("answers `version ..; order=desc,max=1` (config:set) with just the newest release", async () => {
    const { owner, app } = await appWithReleases(3);
    const res = await list(owner, app, "version ..; order=desc,max=1");
    expect(res.status).toBe(206);
    expect(versions(res.body)).toEqual([3]);
    expect(res.body[0]!.current).toBe(true);
    expect(res.headers.get("next-range")).toBeTruthy();
  });

  it("follows Next-Range page by page to the end without gaps or repeats", async () => {
    const { owner, app } = await appWithReleases(7);
    for (const [start, order, expected] of [
      ["version ..; max=2", "asc", range(1, 7)],
      ["version ..; max=3, order=desc", "desc", range(7, 1)],
    ] as const) {
      const seen: number[] = [];
      let header: string | null = start;
      let pages = 0;
      while (header) {
        const res = await list(owner, app, header);
        expect([200, 206]).toContain(res.status);
        seen.push(...versions(res.body));
        header = res.headers.get("next-range");
        expect(res.status === 206).toBe(header !== null);
        if (header) expect(header).toContain(`order=${order}`);
        expect(++pages).toBeLessThan(10);
      }
      expect(seen).toEqual(expected);
    }
  });

  it("honours start and end bounds in either order", async () => {
    const { owner, app } = await appWithReleases(6);
    expect(versions((await list(owner, app, "version 2..4")).body)).toEqual([2, 3, 4]);
    expect(versions((await list(owner, app, "version ]2..4")).body)).toEqual([3, 4]);
    expect(versions((await list(owner, app, "version 5..2; order=desc")).body)).toEqual([5, 4, 3, 2]);
  });

  it("shows only the app's own releases", async () => {
    const mine = await appWithReleases(3);
    const theirs = await appWithReleases(2);
    const ids = new Set((await list(theirs.owner, theirs.app)).body.map((r) => r.id));
    for (const r of (await list(mine.owner, mine.app)).body) expect(ids.has(r.id)).toBe(false);
    const stranger = await list(theirs.owner, mine.app);
    expect(stranger.status).toBe(403);
  });

  it.each([
    ["an unknown field", "colour ..; max=2"],
    ["an upper-case field", "VERSION ..; max=2"],
    ["no range dots", "version 3"],
    ["a zero max", "version ..; max=0"],
    ["a negative max", "version ..; max=-5"],
    ["a non-numeric max", "version ..; max=lots"],
    ["an unknown order", "version ..; order=sideways"],
    ["an unknown parameter", "version ..; max=2, colour=blue"],
    ["a non-numeric version", "version abc.."],
    ["a non-UUID id", "id zzz.."],
    ["only parameters", "; max=2"],
  ])("answers 400 for a Range with %s", async (_label, header) => {
    const { owner, app } = await appWithReleases(2);
    const res = await list(owner, app, header);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ id: "bad_request", message: expect.any(String) });
  });
});

describe("GET /apps/{app}/releases/{release}", () => {
  it("finds a release by version, by vN and by id", async () => {
    const { owner, app } = await appWithReleases(3);
    const all = (await list(owner, app)).body;
    const two = all.find((r) => r.version === 2)!;
    for (const ref of ["2", "v2", two.id]) {
      const res = await api(`/apps/${app}/releases/${ref}`, { token: owner.token });
      expect(res.status).toBe(200);
      expect(res.body).toEqual(two);
    }
    expect((await api(`/apps/${app}/releases/3`, { token: owner.token })).body.current).toBe(true);
  });

  it.each([["99"], ["v99"], ["0"], [randomUUID()], ["latest"], ["v"]])("answers 404 for %s", async (ref) => {
    const { owner, app } = await appWithReleases(2);
    const res = await api(`/apps/${app}/releases/${ref}`, { token: owner.token });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "release" });
  });

  it("answers 404 for another app's release id", async () => {
    const mine = await appWithReleases(2);
    const other = await makeApp(mine.owner);
    const id = (await list(mine.owner, mine.app)).body[1]!.id;
    const res = await api(`/apps/${other.name}/releases/${id}`, { token: mine.owner.token });
    expect(res.status).toBe(404);
    expect(res.body.resource).toBe("release");
  });

  it("gives each release's config snapshot", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    const patches = [{ A: "1" }, { B: "two", A: "one" }, { A: null }];
    const snapshots: Record<string, string>[] = [{}];
    for (const p of patches) {
      const res = await api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: p });
      snapshots.push(res.body);
    }
    expect(snapshots).toEqual([{}, { A: "1" }, { A: "one", B: "two" }, { B: "two" }]);
    for (const [i, expected] of snapshots.entries()) {
      for (const ref of [String(i + 1), `v${i + 1}`]) {
        const res = await api(`/apps/${app}/releases/${ref}/config-vars`, { token: owner.token });
        expect(res.status).toBe(200);
        expect(res.body).toEqual(expected);
      }
    }
    const missing = await api(`/apps/${app}/releases/42/config-vars`, { token: owner.token });
    expect(missing.status).toBe(404);
    expect(missing.body.resource).toBe("release");
  });
});

describe("POST /apps/{app}/releases (rollback)", () => {
  it("cuts a current release copying the target's slug and config, and the app's config follows", async () => {
    const owner = await makeAccount();
    const { name: app } = await makeApp(owner);
    const { slug } = await deploySlug(owner.token, app, {});
    for (const p of [{ A: "1", KEEP: "k" }, { A: "2", B: "new" }, { KEEP: null }]) {
      await api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: p });
    }
    const before = (await list(owner, app)).body;
    expect(versions(before)).toEqual([1, 2, 3, 4, 5]);
    const target = before.find((r) => r.version === 3)!;
    const targetConfig = (await api(`/apps/${app}/releases/3/config-vars`, { token: owner.token })).body;
    expect(targetConfig).toEqual({ A: "1", KEEP: "k" });

    const res = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body: { release: target.id } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ version: 6, description: "Rollback to v3", current: true, status: "succeeded", slug: { id: slug.id } });

    const after = (await list(owner, app)).body;
    expect(after.slice(0, 5).map((r) => ({ ...r, current: false }))).toEqual(before.map((r) => ({ ...r, current: false })));
    expect(after.map((r) => r.current)).toEqual([false, false, false, false, false, true]);
    expect(after[5]!.id).toBe(res.body.id);
    expect((await api(`/apps/${app}/releases/6/config-vars`, { token: owner.token })).body).toEqual(targetConfig);
    expect(await config(owner, app)).toEqual(targetConfig);

    // The next config change builds on the rolled-back config.
    const next = await api(`/apps/${app}/config-vars`, { method: "PATCH", token: owner.token, body: { C: "3" } });
    expect(next.body).toEqual({ ...targetConfig, C: "3" });
    expect(versions((await list(owner, app)).body)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it.each([
    ["an unknown release id", () => ({ release: randomUUID() })],
    ["an unknown version", () => ({ release: "v99" })],
    ["garbage", () => ({ release: "not-a-release" })],
  ])("answers 404 for %s and changes nothing", async (_label, body) => {
    const { owner, app } = await appWithReleases(3);
    const before = (await list(owner, app)).body;
    const beforeConfig = await config(owner, app);
    const res = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body: body() });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found" });
    expect((await list(owner, app)).body).toEqual(before);
    expect(await config(owner, app)).toEqual(beforeConfig);
  });

  it("answers 404 for another app's release and changes nothing", async () => {
    const mine = await appWithReleases(3);
    const other = await appWithReleases(2);
    const foreign = (await list(other.owner, other.app)).body[0]!;
    const before = (await list(mine.owner, mine.app)).body;
    const res = await api(`/apps/${mine.app}/releases`, { method: "POST", token: mine.owner.token, body: { release: foreign.id } });
    expect(res.status).toBe(404);
    expect(res.body.resource).toBe("release");
    expect((await list(mine.owner, mine.app)).body).toEqual(before);
    expect(await config(mine.owner, mine.app)).toEqual({ STEP: "3" });
  });

  it.each([
    ["an empty body", {}],
    ["an unknown field", { release: "v1", colour: "blue" }],
    ["a numeric release", { release: 1 }],
  ])("answers 422 for %s and changes nothing", async (_label, body) => {
    const { owner, app } = await appWithReleases(2);
    const before = (await list(owner, app)).body;
    const res = await api(`/apps/${app}/releases`, { method: "POST", token: owner.token, body });
    expect(res.status).toBe(422);
    expect(res.body).toEqual({ id: "invalid_params", message: expect.any(String) });
    expect((await list(owner, app)).body).toEqual(before);
    expect(await config(owner, app)).toEqual({ STEP: "2" });
  });

  it("is refused for another account's app", async () => {
    const { owner, app } = await appWithReleases(2);
    const stranger = await makeAccount();
    const before = (await list(owner, app)).body;
    const res = await api(`/apps/${app}/releases`, { method: "POST", token: stranger.token, body: { release: before[0]!.id } });
    expect(res.status).toBe(403);
    expect((await list(owner, app)).body).toEqual(before);
    expect(await config(owner, app)).toEqual({ STEP: "2" });
  });
});
