import { describe, expect, it } from "vitest";
import { concatBytes, FLUSH, GitProtocolError, pktLine } from "../../src/git/pkt-line.ts";
import { parseCommandLine, readReceivePackRequest, ZERO_ID } from "../../src/git/receive-pack.ts";
import { chunked } from "../support/streams.ts";

const enc = new TextEncoder();
const A = "a".repeat(40);
const B = "0123456789abcdef0123456789abcdef01234567";

describe("parseCommandLine", () => {
  it.each([
    ["an update", `${A} ${B} refs/heads/main\n`, { oldId: A, newId: B, ref: "refs/heads/main" }, []],
    ["a creation", `${ZERO_ID} ${B} refs/heads/master`, { oldId: ZERO_ID, newId: B, ref: "refs/heads/master" }, []],
    ["a deletion", `${A} ${ZERO_ID} refs/heads/x`, { oldId: A, newId: ZERO_ID, ref: "refs/heads/x" }, []],
    [
      "capabilities after NUL",
      `${A} ${B} refs/heads/main\0 report-status side-band-64k agent=git/2.39.5\n`,
      { oldId: A, newId: B, ref: "refs/heads/main" },
      ["report-status", "side-band-64k", "agent=git/2.39.5"],
    ],
  ])("parses %s", (_label, line, command, capabilities) => {
    expect(parseCommandLine(enc.encode(line), true)).toEqual({ command, capabilities });
  });

  it.each([
    ["a short old id", `${A.slice(1)} ${B} refs/heads/main`],
    ["upper-case hex", `${A.toUpperCase()} ${B} refs/heads/main`],
    ["a ref outside refs/", `${A} ${B} HEAD`],
    ["a ref with a space", `${A} ${B} refs/heads/a b`],
    ["a ref with ..", `${A} ${B} refs/heads/a..b`],
    ["a ref ending in .lock", `${A} ${B} refs/heads/main.lock`],
    ["a ref with a control character", `${A} ${B} refs/heads/a\x01`],
    ["a missing ref", `${A} ${B}`],
    ["garbage", "hello"],
  ])("rejects %s", (_label, line) => {
    expect(() => parseCommandLine(enc.encode(line), true)).toThrow(GitProtocolError);
  });

  it("rejects capabilities on a later line, shallow lines, signed pushes and invalid UTF-8", () => {
    expect(() => parseCommandLine(enc.encode(`${A} ${B} refs/heads/main\0report-status`), false)).toThrow(/capabilities after/);
    expect(() => parseCommandLine(enc.encode(`shallow ${A}`), true)).toThrow(/shallow/);
    expect(() => parseCommandLine(enc.encode("push-cert\0report-status"), true)).toThrow(/signed pushes/);
    expect(() => parseCommandLine(new Uint8Array([0xff, 0xfe]), true)).toThrow(/UTF-8/);
  });
});

const body = (...parts: Array<string | Uint8Array>) => concatBytes(parts.map((p) => (typeof p === "string" ? enc.encode(p) : p)));

describe("readReceivePackRequest", () => {
  it("treats git's 4-byte 0000 probe as a request with no commands and no pack", async () => {
    expect(await readReceivePackRequest(chunked(enc.encode("0000"), 4))).toEqual({ commands: [], capabilities: [], pack: null });
  });

  it("treats an empty body the same way", async () => {
    expect(await readReceivePackRequest(chunked(new Uint8Array(0), 1))).toEqual({ commands: [], capabilities: [], pack: null });
  });

  it.each([1, 3, 50])("reads commands to the flush, then streams the pack (chunks of %i)", async (size) => {
    const pack = Uint8Array.from({ length: 200 }, (_, i) => (i * 7) % 256);
    const request = body(pktLine(`${ZERO_ID} ${B} refs/heads/main\0report-status side-band-64k\n`), pktLine(`${A} ${B} refs/heads/feature\n`), FLUSH, pack);
    const parsed = await readReceivePackRequest(chunked(request, size));
    expect(parsed.capabilities).toEqual(["report-status", "side-band-64k"]);
    expect(parsed.commands).toEqual([
      { oldId: ZERO_ID, newId: B, ref: "refs/heads/main" },
      { oldId: A, newId: B, ref: "refs/heads/feature" },
    ]);
    expect(new Uint8Array(await new Response(parsed.pack).arrayBuffer())).toEqual(pack);
  });

  it.each([
    ["commands with no flush", body(pktLine(`${A} ${B} refs/heads/main\n`)), /without a flush/],
    ["a truncated command", body("00a0", `${A} ${B}`), /truncated line/],
    ["a bad length", body("zzzz"), /bad line length/],
    ["a malformed command", body(pktLine("not a command\n"), FLUSH), /expected/],
    ["a delimiter packet", body("0001"), /special packet/],
  ])("rejects %s", async (_label, request, message) => {
    await expect(readReceivePackRequest(chunked(request, 7))).rejects.toThrow(message);
  });

  it("caps the number of ref updates", async () => {
    const lines = Array.from({ length: 1001 }, (_, i) => pktLine(`${A} ${B} refs/heads/b${i}\n`));
    await expect(readReceivePackRequest(chunked(body(...lines, FLUSH), 4096))).rejects.toThrow(/at most 1000 refs/);
  });
});
