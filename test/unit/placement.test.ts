import { describe, expect, it } from "vitest";
import { chooseHost, memoryOf } from "../../src/services/dynos/placement.ts";

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

  it("puts a dyno where its app has the fewest of the same type, before free memory", () => {
    const free = new Map([
      ["a", 4096],
      ["b", 2048],
      ["c", 1024],
    ]);
    expect(chooseHost(free, 512, new Map([["a", 1]]))).toBe("b");
    expect(
      chooseHost(
        free,
        512,
        new Map([
          ["a", 1],
          ["b", 1],
        ]),
      ),
    ).toBe("c");
    // Every host has one already: the most free memory decides again.
    expect(
      chooseHost(
        free,
        512,
        new Map([
          ["a", 1],
          ["b", 1],
          ["c", 1],
        ]),
      ),
    ).toBe("a");
    // Spreading never over-commits: a host without room is passed over, siblings or not.
    expect(
      chooseHost(
        new Map([
          ["a", 4096],
          ["b", 256],
        ]),
        512,
        new Map([["a", 3]]),
      ),
    ).toBe("a");
  });

  it("knows Heroku's dyno sizes", () => {
    expect([memoryOf("Eco"), memoryOf("Basic"), memoryOf("Standard-1X"), memoryOf("Standard-2X")]).toEqual([512, 512, 512, 1024]);
  });
});
