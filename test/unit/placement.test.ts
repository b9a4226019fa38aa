import { describe, expect, it } from "vitest";
import { chooseHost, memoryOf } from "../../src/services/placement.ts";

describe("chooseHost", () => {
  it.each([
    [
      "the host with the most free memory",
      [
        ["a", 1024],
        ["b", 3072],
        ["c", 2048],
      ],
      512,
      "b",
    ],
    ["a host the dyno fits exactly", [["a", 512]], 512, "a"],
    [
      "nothing when no host has room",
      [
        ["a", 256],
        ["b", 511],
      ],
      512,
      null,
    ],
    ["nothing when there are no hosts", [], 512, null],
    [
      "a host with negative free memory never",
      [
        ["a", -100],
        ["b", 600],
      ],
      512,
      "b",
    ],
  ] as const)("picks %s", (_label, free, memoryMb, expected) => {
    expect(chooseHost(new Map(free as ReadonlyArray<[string, number]>), memoryMb)).toBe(expected);
  });

  it("knows Heroku's dyno sizes", () => {
    expect([memoryOf("Eco"), memoryOf("Basic"), memoryOf("Standard-1X"), memoryOf("Standard-2X")]).toEqual([512, 512, 512, 1024]);
  });
});
