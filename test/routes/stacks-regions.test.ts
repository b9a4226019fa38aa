import { afterAll, describe, expect, it } from "vitest";
import { api } from "../support/api.ts";
import { closeDb, makeAccount, makeApp } from "../support/factories.ts";

afterAll(closeDb);

describe("regions and stacks", () => {
  it("lists the regions apps can be made in, each found by name or id", async () => {
    const owner = await makeAccount();
    const regions = await api("/regions", { token: owner.token });
    expect(regions.status).toBe(200);
    expect(regions.body.map((r: { name: string }) => r.name)).toEqual(["us", "eu"]);
    for (const region of regions.body) {
      expect(region).toMatchObject({ private_capable: false });
      expect((await api(`/regions/${region.id}`, { token: owner.token })).body).toEqual(region);
      expect((await api(`/regions/${region.name.toUpperCase()}`, { token: owner.token })).body).toEqual(region);
      // An app made there names the same region.
      const app = await api("/apps", { method: "POST", token: owner.token, body: { region: region.name } });
      expect(app.status).toBe(201);
      expect(app.body.region).toEqual({ id: region.id, name: region.name });
      await api(`/apps/${app.body.name}`, { method: "DELETE", token: owner.token });
    }
    const missing = await api("/regions/mars", { token: owner.token });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ id: "not_found", message: "Couldn't find that region.", resource: "region" });
  });

  it("lists the stacks, the one new apps get as the default", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const stacks = await api("/stacks", { token: owner.token });
    expect(stacks.status).toBe(200);
    const fresh = (await api(`/apps/${app.name}`, { token: owner.token })).body;
    expect(stacks.body.filter((s: { default: boolean }) => s.default).map((s: { id: string; name: string }) => ({ id: s.id, name: s.name }))).toEqual([
      fresh.stack,
    ]);
    for (const stack of stacks.body) expect((await api(`/stacks/${stack.id}`, { token: owner.token })).body).toEqual(stack);
    expect((await api(`/apps/${app.name}/available-stacks`, { token: owner.token })).body).toEqual(stacks.body);
    const missing = await api("/stacks/cedar-14", { token: owner.token });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ id: "not_found", resource: "stack" });
  });

  it("needs a token, and another account's app's stacks are not theirs to list", async () => {
    const owner = await makeAccount();
    const stranger = await makeAccount();
    const app = await makeApp(owner);
    expect((await api("/regions")).status).toBe(401);
    const foreign = await api(`/apps/${app.name}/available-stacks`, { token: stranger.token });
    expect(foreign.status).toBe(403);
    expect(foreign.body.id).toBe("forbidden");
  });
});
