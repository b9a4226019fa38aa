import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { PartUploader } from "../../src/agent/transfers.ts";

/** Writes `chunks` through a PartUploader of `partBytes`; returns the parts it handed on, in order. */
async function cut(chunks: Buffer[], partBytes: number, fail?: number): Promise<{ n: number; part: string }[]> {
  const parts: { n: number; part: string }[] = [];
  let inFlight = 0;
  const uploader = new PartUploader(partBytes, async (n, part) => {
    inFlight++;
    expect(inFlight).toBe(1); // one part at a time
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
    if (n === fail) throw new Error(`part ${n} refused`);
    parts.push({ n, part: part.toString() });
  });
  await pipeline(Readable.from(chunks), uploader);
  return parts;
}

describe("a backup's upload in parts", () => {
  it("cuts what is written into parts of one size, the last shorter, numbered from 1 in order", async () => {
    const text = "abcdefghijklmnopqrstuvwxyz0123456789";
    const chunks = [3, 1, 10, 7, 15].reduce<{ at: number; out: Buffer[] }>(
      (acc, len) => ({ at: acc.at + len, out: [...acc.out, Buffer.from(text.slice(acc.at, acc.at + len))] }),
      { at: 0, out: [] },
    ).out;
    expect(await cut(chunks, 10)).toEqual([
      { n: 1, part: "abcdefghij" },
      { n: 2, part: "klmnopqrst" },
      { n: 3, part: "uvwxyz0123" },
      { n: 4, part: "456789" },
    ]);
  });

  it("sends no empty last part when the size is a multiple of the part, and one part for a small dump", async () => {
    expect(await cut([Buffer.from("0123456789"), Buffer.from("abcdefghij")], 10)).toEqual([
      { n: 1, part: "0123456789" },
      { n: 2, part: "abcdefghij" },
    ]);
    expect(await cut([Buffer.from("tiny")], 10)).toEqual([{ n: 1, part: "tiny" }]);
  });

  it("sends no part at all when nothing was written", async () => {
    expect(await cut([], 10)).toEqual([]);
  });

  it("fails the write when a part is refused", async () => {
    await expect(cut([Buffer.from("0123456789abcdefghij0123")], 10, 2)).rejects.toThrow("part 2 refused");
  });
});
