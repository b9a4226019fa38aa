import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import { applyConfigPatch, CONFIG_LIMIT_BYTES, configSize, describeConfigChange, type ConfigPatch } from "../../src/services/apps/config-vars.ts";

function refusal(run: () => unknown): ApiError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error("expected an ApiError");
}

describe("applyConfigPatch", () => {
  it.each<[string, Record<string, string>, ConfigPatch, { next: Record<string, string>; set: string[]; removed: string[] }]>([
    ["sets a new key", {}, { FOO: "bar" }, { next: { FOO: "bar" }, set: ["FOO"], removed: [] }],
    ["changes a value", { FOO: "a" }, { FOO: "b" }, { next: { FOO: "b" }, set: ["FOO"], removed: [] }],
    ["removes with null", { FOO: "a", BAR: "b" }, { FOO: null }, { next: { BAR: "b" }, set: [], removed: ["FOO"] }],
    ["ignores an unchanged value", { FOO: "a" }, { FOO: "a" }, { next: { FOO: "a" }, set: [], removed: [] }],
    ["ignores removing a missing key", { FOO: "a" }, { NOPE: null }, { next: { FOO: "a" }, set: [], removed: [] }],
    ["does both at once", { OLD: "x" }, { NEW: "y", OLD: null }, { next: { NEW: "y" }, set: ["NEW"], removed: ["OLD"] }],
    ["keeps the patch's key order", {}, { B: "1", A: "2", C: "3" }, { next: { A: "2", B: "1", C: "3" }, set: ["B", "A", "C"], removed: [] }],
    ["allows an empty value", {}, { EMPTY: "" }, { next: { EMPTY: "" }, set: ["EMPTY"], removed: [] }],
    [
      "allows underscores and lower case",
      {},
      { _private: "1", lower_Mixed9: "2" },
      { next: { _private: "1", lower_Mixed9: "2" }, set: ["_private", "lower_Mixed9"], removed: [] },
    ],
    ["is case-sensitive", { foo: "1" }, { FOO: "2" }, { next: { foo: "1", FOO: "2" }, set: ["FOO"], removed: [] }],
    ["does nothing for an empty patch", { A: "1" }, {}, { next: { A: "1" }, set: [], removed: [] }],
  ])("%s", (_label, current, patch, expected) => {
    const snapshot = structuredClone(current);
    const result = applyConfigPatch(current, patch);
    expect(result.next).toEqual(expected.next);
    expect(result.set).toEqual(expected.set);
    expect(result.removed).toEqual(expected.removed);
    expect(current).toEqual(snapshot);
  });

  it.each([["1ABC"], ["A-B"], [""], ["with space"], ["CAFÉ"], ["A=B"], ["A.B"], ["$HOME"], ["A\u0000"]])("refuses the key %j", (key) => {
    const current = { KEEP: "1" };
    const error = refusal(() => applyConfigPatch(current, { [key]: "x" }));
    expect(error.id).toBe("invalid_params");
    expect(error.status).toBe(422);
    expect(refusal(() => applyConfigPatch(current, { [key]: null })).id).toBe("invalid_params");
    expect(current).toEqual({ KEEP: "1" });
  });

  it.each([[42], [true], [{ a: "b" }], [["x"]], [undefined]])("refuses the value %j", (value) => {
    const error = refusal(() => applyConfigPatch({}, { FOO: value } as unknown as ConfigPatch));
    expect(error.id).toBe("invalid_params");
  });

  it("refuses a NUL in a value", () => {
    expect(refusal(() => applyConfigPatch({}, { FOO: "a\u0000b" })).id).toBe("invalid_params");
  });

  it("allows exactly the size limit and refuses one byte more", () => {
    const atLimit = { K: "x".repeat(CONFIG_LIMIT_BYTES - 1) };
    expect(applyConfigPatch({}, atLimit).next).toEqual(atLimit);
    expect(refusal(() => applyConfigPatch({}, { KK: "x".repeat(CONFIG_LIMIT_BYTES - 1) })).id).toBe("invalid_params");
    expect(refusal(() => applyConfigPatch(atLimit, { Z: "" })).id).toBe("invalid_params");
  });

  it("lets a patch that shrinks an over-full config through", () => {
    const big = { A: "x".repeat(CONFIG_LIMIT_BYTES / 2), B: "y".repeat(CONFIG_LIMIT_BYTES / 2) };
    expect(applyConfigPatch({}, { A: big.A }).set).toEqual(["A"]);
    expect(refusal(() => applyConfigPatch({ A: big.A }, { B: big.B })).id).toBe("invalid_params");
    expect(applyConfigPatch({ A: big.A }, { A: null, B: big.B })).toEqual({ next: { B: big.B }, set: ["B"], removed: ["A"] });
  });
});

describe("describeConfigChange", () => {
  it.each<[string[], string[], string]>([
    [["FOO"], [], "Set FOO config vars"],
    [["FOO", "BAR"], [], "Set FOO, BAR config vars"],
    [[], ["FOO"], "Remove FOO config vars"],
    [[], ["A", "B", "C"], "Remove A, B, C config vars"],
    [["NEW"], ["OLD"], "Set NEW config vars and Remove OLD config vars"],
    [[], [], ""],
  ])("describes set %j and removed %j", (set, removed, expected) => {
    expect(describeConfigChange(set, removed)).toBe(expected);
  });
});

describe("configSize", () => {
  it.each<[Record<string, string>, number]>([
    [{}, 0],
    [{ A: "" }, 1],
    [{ FOO: "bar" }, 6],
    [{ FOO: "bar", BAZ: "quux" }, 13],
    [{ E: "é" }, 3],
    [{ R: "🚀" }, 5],
    [{ J: "日本" }, 7],
  ])("counts keys and values of %j in UTF-8 bytes", (config, expected) => {
    expect(configSize(config)).toBe(expected);
    const independent = Object.entries(config).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
    expect(configSize(config)).toBe(independent);
  });
});
