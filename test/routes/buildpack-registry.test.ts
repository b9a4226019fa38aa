import { describe, expect, it } from "vitest";
import { api } from "../support/api.ts";

const lookup = (name: string) =>
  api(`/buildpack-registry/buildpacks/${encodeURIComponent(name)}`, { headers: { Accept: "application/vnd.heroku+json; version=3.buildpack-registry" } });

describe("the buildpack registry's lookups", () => {
  it.each(["heroku/python", "heroku/nodejs", "heroku/procfile", "Heroku/Python"])(
    "names %s, without a token, as the built-in buildpack it installs",
    async (name) => {
      const res = await lookup(name);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ namespace: "heroku", name: name.split("/")[1]!.toLowerCase(), blob_url: name.toLowerCase() });
    },
  );

  it.each(["heroku/ruby", "someone/python", "heroku", "../../etc/passwd"])("does not know %s", async (name) => {
    const res = await lookup(name);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ id: "not_found", resource: "buildpack" });
    expect(res.body.message).toContain("is not in the buildpack registry");
  });
});
