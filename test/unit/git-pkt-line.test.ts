import { describe, expect, it } from "vitest";
import { concatBytes, FLUSH, GitProtocolError, MAX_PKT_LENGTH, PktLineReader, pktLine } from "../../src/git/pkt-line.ts";
import { chunked } from "../support/streams.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readAll(reader: PktLineReader) {
  const out: string[] = [];
  for (;;) {
    const pkt = await reader.read();
    if (pkt === null) return out;
    out.push(pkt === "flush" ? "<flush>" : dec.decode(pkt));
  }
}

describe("pktLine", () => {
  it.each([
    ["", "0004"],
    ["a", "0005a"],
    ["hello\n", "000ahello\n"],
    ["# service=git-receive-pack\n", "001f# service=git-receive-pack\n"],
  ])("frames %j as %j", (payload, framed) => {
    expect(dec.decode(pktLine(payload))).toBe(framed);
  });

  it("frames the longest payload and refuses a longer one", () => {
    expect(pktLine(new Uint8Array(MAX_PKT_LENGTH - 4)).length).toBe(MAX_PKT_LENGTH);
    expect(dec.decode(pktLine(new Uint8Array(MAX_PKT_LENGTH - 4)).subarray(0, 4))).toBe("fff0");
    expect(() => pktLine(new Uint8Array(MAX_PKT_LENGTH - 3))).toThrow(RangeError);
  });
});

describe("PktLineReader", () => {
  const wellFormed = concatBytes([pktLine("one\n"), pktLine("two"), FLUSH, pktLine("three\n"), FLUSH]);

  it.each([1, 2, 3, 5, 7, 1000])("reads lines and flushes the same in chunks of %i bytes", async (size) => {
    expect(await readAll(new PktLineReader(chunked(wellFormed, size)))).toEqual(["one\n", "two", "<flush>", "three\n", "<flush>"]);
  });

  it("accepts upper-case hex lengths as git does", async () => {
    const bytes = enc.encode("000Ahello\n0000");
    expect(await readAll(new PktLineReader(chunked(bytes, 3)))).toEqual(["hello\n", "<flush>"]);
  });

  it("returns null at a clean end and for an empty body", async () => {
    expect(await new PktLineReader(chunked(new Uint8Array(0), 1)).read()).toBeNull();
  });

  it.each([
    ["a truncated length", "00", /truncated line length/],
    ["a truncated line", "000ahel", /truncated line/],
    ["a length that says more than follows", "0010abc", /truncated line/],
    ["non-hex length characters", "00zzabc", /bad line length/],
    ["a length with a sign", "-001abc", /bad line length/],
    ["a length below four (0001 delimiter)", "0001", /special packet 0001/],
    ["a length of three", "0003", /special packet 0003/],
    ["a length above 65520", "fff1", /too long/],
  ])("rejects %s", async (_label, input, message) => {
    const reader = new PktLineReader(chunked(enc.encode(input), 2));
    await expect(readAll(reader)).rejects.toThrow(GitProtocolError);
    await expect(readAll(new PktLineReader(chunked(enc.encode(input), 2)))).rejects.toThrow(message);
  });

  it.each([1, 4, 9, 64])("hands over the bytes after the lines, in chunks of %i", async (size) => {
    const tail = Uint8Array.from({ length: 300 }, (_, i) => i % 251);
    const reader = new PktLineReader(chunked(concatBytes([pktLine("cmd"), FLUSH, tail]), size));
    expect(await reader.read()).toEqual(enc.encode("cmd"));
    expect(await reader.read()).toBe("flush");
    const rest = new Uint8Array(await new Response(reader.rest()).arrayBuffer());
    expect(rest).toEqual(tail);
  });

  it("hands over an empty rest when nothing follows", async () => {
    const reader = new PktLineReader(chunked(FLUSH, 4));
    expect(await reader.read()).toBe("flush");
    expect((await new Response(reader.rest()).arrayBuffer()).byteLength).toBe(0);
  });
});
