import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, nextRange, parseRange, type PageRange } from "../../src/lib/range.ts";

const FIELDS = ["version", "id"] as const;

const page = (over: Partial<PageRange>): PageRange => ({ field: "version", exclusive: false, max: DEFAULT_PAGE_SIZE, order: "asc", ...over });

describe("parseRange", () => {
  it.each<[string | undefined | null, PageRange]>([
    [undefined, page({})],
    [null, page({})],
    ["", page({})],
    ["   ", page({})],
    ["version", page({})],
    ["version ..", page({})],
    ["id ..", page({ field: "id" })],
    ["version ..; max=15, order=desc", page({ max: 15, order: "desc" })],
    ["version ..; order=desc,max=1", page({ max: 1, order: "desc" })],
    ["version ..; order=desc; max=7", page({ max: 7, order: "desc" })],
    ["version ..;max=3,order=asc", page({ max: 3 })],
    ["  version   ..  ;  max = 4 ,  order = desc  ", page({ max: 4, order: "desc" })],
    ["version 3..", page({ start: "3" })],
    ["version ..9", page({ end: "9" })],
    ["version 3..9; max=2", page({ start: "3", end: "9", max: 2 })],
    ["version ]3..; max=15, order=desc", page({ start: "3", exclusive: true, max: 15, order: "desc" })],
    ["version ]..", page({ exclusive: true })],
    ["id ]0b5e4a1c-6f7d-4c1e-9a57-1f2d3c4b5a69..; max=2", page({ field: "id", start: "0b5e4a1c-6f7d-4c1e-9a57-1f2d3c4b5a69", exclusive: true, max: 2 })],
    [`version ..; max=${MAX_PAGE_SIZE}`, page({ max: MAX_PAGE_SIZE })],
    [`version ..; max=${MAX_PAGE_SIZE + 1}`, page({ max: MAX_PAGE_SIZE })],
    ["version ..; max=999999", page({ max: MAX_PAGE_SIZE })],
  ])("parses %j", (header, expected) => {
    expect(parseRange(header, FIELDS)).toEqual(expected);
  });

  it("defaults to the first sort field", () => {
    expect(parseRange(undefined, ["name", "id"]).field).toBe("name");
    expect(parseRange("", ["id", "name"]).field).toBe("id");
  });

  it.each([
    ["an unknown field", "colour ..; max=2"],
    ["a field of the wrong case", "Version .."],
    ["a field with digits", "v2 .."],
    ["no field", "; max=2"],
    ["bounds without dots", "version 3"],
    ["bounds with one dot", "version 3.9"],
    ["a zero max", "version ..; max=0"],
    ["a negative max", "version ..; max=-1"],
    ["a fractional max", "version ..; max=1.5"],
    ["an empty max", "version ..; max="],
    ["a word for max", "version ..; max=ten"],
    ["a hex max", "version ..; max=0x10"],
    ["an exponent max", "version ..; max=1e2"],
    ["a signed max", "version ..; max=+5"],
    ["an unknown order", "version ..; order=random"],
    ["an upper-case order", "version ..; order=DESC"],
    ["an empty order", "version ..; order="],
    ["an unknown parameter", "version ..; max=2, page=3"],
    ["a bare word parameter", "version ..; desc"],
  ])("refuses %s with a 400 bad_request", (_label, header) => {
    let error: unknown;
    try {
      parseRange(header, FIELDS);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).id).toBe("bad_request");
    expect((error as ApiError).status).toBe(400);
  });
});

describe("nextRange", () => {
  it.each<[PageRange, string]>([
    [page({ max: 15, order: "desc" }), "3"],
    [page({ field: "id", max: 2 }), "0b5e4a1c-6f7d-4c1e-9a57-1f2d3c4b5a69"],
    [page({ start: "3", end: "9", max: 1 }), "5"],
  ])("continues %j after the last value, exclusively", (range, last) => {
    const header = nextRange(range, last);
    expect(header.startsWith(`${range.field} ]${last}..`)).toBe(true);
    const parsed = parseRange(header, FIELDS);
    expect(parsed).toMatchObject({ field: range.field, start: last, exclusive: true, max: range.max, order: range.order });
  });

  it("writes Heroku's form", () => {
    expect(nextRange(page({ max: 15, order: "desc" }), "3")).toBe("version ]3..; max=15, order=desc");
  });
});
