import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import { normalizeBuildpack, normalizeBuildpacks } from "../../src/services/builds/buildpacks.ts";

describe("normalizeBuildpack", () => {
  it.each([
    ["heroku/python", "heroku/python"],
    ["heroku/nodejs", "heroku/nodejs"],
    [" heroku/procfile ", "heroku/procfile"],
    ["urn:buildpack:heroku/python", "heroku/python"],
    ["https://github.com/heroku/heroku-buildpack-python", "https://github.com/heroku/heroku-buildpack-python"],
    ["https://github.com/heroku/heroku-buildpack-python.git#v250", "https://github.com/heroku/heroku-buildpack-python.git#v250"],
    ["git@github.com:me/bp.git", "git@github.com:me/bp.git"],
    ["/opt/buildpacks/custom", "/opt/buildpacks/custom"],
  ])("accepts %j as %j", (input, url) => {
    expect(normalizeBuildpack(input)).toEqual({ url, name: url });
  });

  it.each([
    ["an unknown built-in name", "heroku/ruby"],
    ["a bare word", "python"],
    ["a relative path", "buildpacks/custom"],
    ["a path that climbs out", "/opt/../etc"],
    ["a file URL", "file:///etc"],
    ["a URL with a space", "https://example.com/a b"],
    ["a path with a NUL", "/opt/a\u0000b"],
    ["an empty string", ""],
    ["a very long URL", `https://example.com/${"a".repeat(2100)}`],
  ])("refuses %s", (_label, input) => {
    expect(() => normalizeBuildpack(input)).toThrow(ApiError);
  });
});

describe("normalizeBuildpacks", () => {
  it("keeps the order and refuses duplicates and more than ten", () => {
    expect(normalizeBuildpacks(["heroku/nodejs", "heroku/python"]).map((b) => b.url)).toEqual(["heroku/nodejs", "heroku/python"]);
    expect(() => normalizeBuildpacks(["heroku/python", "urn:buildpack:heroku/python"])).toThrow(/listed twice/);
    expect(() => normalizeBuildpacks(Array.from({ length: 11 }, (_, i) => `/opt/bp${i}`))).toThrow(/at most 10/);
    expect(normalizeBuildpacks([])).toEqual([]);
  });
});
