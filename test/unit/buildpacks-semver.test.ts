import { describe, expect, it } from "vitest";
import semver from "semver";
import { CompileError } from "../../src/agent/buildpacks/lib/output.ts";
import { checkEngine } from "../../src/agent/buildpacks/nodejs/lib/package-json.ts";

/** Whether `engines.node` = `range` lets a host with node `version` build; throws on a malformed range. */
function satisfies(version: string, range: string): boolean {
  try {
    checkEngine("node", range, version);
    return true;
  } catch (err) {
    if (err instanceof CompileError && /asks for/.test(err.message)) return false;
    throw err;
  }
}

// engines ranges are checked with npm's own semver; these pin what the Node.js buildpack relies on.
describe("engines ranges", () => {
  it.each<[string, string, boolean]>([
    // comparators
    ["20.11.1", ">=18", true],
    ["16.20.0", ">=18", false],
    ["20.11.1", ">= 18", true],
    ["20.11.1", ">18", true],
    ["18.99.0", ">18", false],
    ["18.1.0", ">18.0", true],
    ["18.0.5", ">18.0", false],
    ["20.0.0", "<20", false],
    ["19.9.9", "<20", true],
    ["20.9.9", "<=20", true],
    ["21.0.0", "<=20", false],
    ["20.11.1", "=20.11.1", true],
    ["20.11.1", "20.11.1", true],
    ["v20.11.1", "20.11.1", true],
    ["20.11.2", "20.11.1", false],
    ["20.11.1", ">=18 <21", true],
    ["21.0.0", ">=18 <21", false],
    // caret
    ["20.11.1", "^20.0.0", true],
    ["21.0.0", "^20.0.0", false],
    ["20.0.0", "^20.1", false],
    ["0.2.5", "^0.2.3", true],
    ["0.3.0", "^0.2.3", false],
    ["0.0.3", "^0.0.3", true],
    ["0.0.4", "^0.0.3", false],
    ["0.9.0", "^0.x", true],
    ["1.0.0", "^0", false],
    ["0.0.9", "^0.0", true],
    ["0.1.0", "^0.0", false],
    // tilde
    ["20.11.9", "~20.11.1", true],
    ["20.12.0", "~20.11.1", false],
    ["20.11.0", "~20.11.1", false],
    ["20.99.0", "~20", true],
    ["21.0.0", "~20", false],
    ["1.2.9", "~>1.2", true],
    // x-ranges
    ["20.11.1", "20.x", true],
    ["21.0.0", "20.x", false],
    ["20.11.1", "20", true],
    ["20.11.1", "20.11.x", true],
    ["20.12.0", "20.11.*", false],
    ["20.11.1", "*", true],
    ["20.11.1", "x", true],
    ["20.11.1", "", true],
    ["1.2.3", "1.X", true],
    // hyphen ranges
    ["20.11.1", "18 - 20", true],
    ["21.0.0", "18 - 20", false],
    ["17.9.9", "18 - 20", false],
    ["2.3.4", "1.2.3 - 2.3.4", true],
    ["2.3.5", "1.2.3 - 2.3.4", false],
    ["2.3.9", "1.2.3 - 2.3", true],
    ["2.4.0", "1.2.3 - 2.3", false],
    // alternatives
    ["20.11.1", "^18 || ^20", true],
    ["19.0.0", "^18 || ^20", false],
    ["16.0.0", "14.x || 16.x || >=20", true],
    ["17.0.0", "14.x || 16.x || >=20", false],
    ["22.1.0", "<18 || >=22.0.0 <23", true],
    // prereleases only match ranges that name one of the same version
    ["21.0.0-nightly", ">=20", false],
    ["21.0.0-rc.2", ">=21.0.0-rc.1", true],
    ["21.0.0-rc.1", ">=21.0.0-rc.2", false],
    ["21.0.0", ">=21.0.0-rc.1", true],
    ["21.0.0-rc.1", "^20.0.0", false],
  ])("%s in %j is %s", (version, range, expected) => {
    expect(satisfies(version, range)).toBe(expected);
  });

  it.each(["abc", ">=node", "^20.0.0.0", "1.x.3", "=> 18", "18 -", "~~1", "x".repeat(300)])("refuses the malformed range %j", (range) => {
    expect(() => satisfies("20.0.0", range)).toThrow(/is not a valid semver range/);
  });
});

describe("versions", () => {
  it.each<[string, { major: number; minor: number; patch: number; pre: (string | number)[] } | null]>([
    ["20.11.1", { major: 20, minor: 11, patch: 1, pre: [] }],
    ["v18.0.0", { major: 18, minor: 0, patch: 0, pre: [] }],
    ["1.2.3-beta.4+build5", { major: 1, minor: 2, patch: 3, pre: ["beta", 4] }],
    ["1.2", null],
    ["1.x.0", null],
    ["", null],
  ])("parses %j", (text, expected) => {
    const v = semver.parse(text);
    expect(v && { major: v.major, minor: v.minor, patch: v.patch, pre: v.prerelease }).toEqual(expected);
  });
});
