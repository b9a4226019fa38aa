import { describe, expect, it } from "vitest";
import { LineSplitter, LogBuffer, MAX_LINE_BYTES, TRUNCATED_MARKER } from "../../src/agent/log-buffer.ts";
import { parseProxyPath } from "../../src/protocol/host.ts";
import { unsafeEntry } from "../../src/agent/slug.ts";
import type { LogLine } from "../../src/protocol/host.ts";

function split(chunks: (string | Buffer)[]): string[] {
  const out: string[] = [];
  const s = new LineSplitter((t) => out.push(t));
  for (const c of chunks) s.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  s.end();
  return out;
}

describe("LineSplitter", () => {
  it.each<[string, (string | Buffer)[], string[]]>([
    ["one line", ["hello\n"], ["hello"]],
    ["several lines in one chunk", ["a\nb\nc\n"], ["a", "b", "c"]],
    ["a line across chunks", ["hel", "lo\nwor", "ld\n"], ["hello", "world"]],
    ["a last line without newline", ["a\nb"], ["a", "b"]],
    ["CRLF endings", ["a\r\nb\r\n"], ["a", "b"]],
    ["empty lines", ["\n\nx\n"], ["", "", "x"]],
    ["nothing", [], []],
    ["a UTF-8 character split across chunks", [Buffer.from([0xc3]), Buffer.from([0xa9, 0x0a])], ["é"]],
  ])("%s", (_label, chunks, expected) => {
    expect(split(chunks)).toEqual(expected);
  });

  it("cuts a long line with the marker and skips its rest", () => {
    const lines = split(["x".repeat(MAX_LINE_BYTES * 3), "y".repeat(5000), "\nnext\n"]);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe("x".repeat(MAX_LINE_BYTES) + TRUNCATED_MARKER);
    expect(lines[1]).toBe("next");
  });

  it("cuts an endless line without holding it in memory", () => {
    const out: string[] = [];
    const s = new LineSplitter((t) => out.push(t));
    for (let i = 0; i < 2_000; i++) s.push(Buffer.alloc(64 * 1024, 0x61)); // 128 MB, no newline
    s.end();
    expect(out).toEqual(["a".repeat(MAX_LINE_BYTES) + TRUNCATED_MARKER]);
  });

  it("does not cut a multi-byte character in half", () => {
    const [line] = split(["é".repeat(MAX_LINE_BYTES) + "\n"]);
    expect(line!.endsWith(TRUNCATED_MARKER)).toBe(true);
    expect(line).not.toContain("\uFFFD");
    expect(Buffer.byteLength(line!.slice(0, -TRUNCATED_MARKER.length))).toBeLessThanOrEqual(MAX_LINE_BYTES);
  });
});

describe("LogBuffer", () => {
  const line = (text: string): LogLine => ({ app_id: "00000000-0000-4000-8000-000000000000", dyno: "web.1", source: "app", text, ts: 0 });

  it("keeps lines in order up to its capacity, then drops and counts", () => {
    const buf = new LogBuffer(3);
    for (const t of ["a", "b", "c", "d", "e"]) buf.push(line(t));
    expect(buf.size).toBe(3);
    expect(buf.dropped).toBe(2);
    expect(buf.take(10).map((l) => l.text)).toEqual(["a", "b", "c"]);
    buf.push(line("f"));
    expect(buf.take(10).map((l) => l.text)).toEqual(["f"]);
  });

  it("reports drops once, and again when a report failed", () => {
    const buf = new LogBuffer(1);
    buf.push(line("a"));
    buf.push(line("b"));
    expect(buf.takeDropped()).toBe(1);
    expect(buf.takeDropped()).toBe(0);
    buf.restoreDropped(1);
    expect(buf.takeDropped()).toBe(1);
  });

  it("takes by count and by bytes", () => {
    const buf = new LogBuffer(100);
    for (let i = 0; i < 10; i++) buf.push(line("x".repeat(1000)));
    expect(buf.take(3)).toHaveLength(3);
    expect(buf.take(100, 2_000)).toHaveLength(2);
    expect(buf.size).toBe(5);
  });
});

describe("unsafeEntry", () => {
  it.each<[string, string | null]>([
    ["./app/server.js", null],
    ["app/", null],
    ["./", null],
    ["./app/..data", null],
    ["/etc/passwd", "absolute path"],
    ["../evil", "'..' in path"],
    ["./app/../../etc/cron.d/x", "'..' in path"],
    ["app/..", "'..' in path"],
  ])("%s", (name, expected) => {
    expect(unsafeEntry(name)).toBe(expected);
  });
});

describe("parseProxyPath", () => {
  it.each<[string, { dynoId: string; path: string } | null]>([
    ["/proxy/abc", { dynoId: "abc", path: "/" }],
    ["/proxy/abc/", { dynoId: "abc", path: "/" }],
    ["/proxy/abc/x/y?q=1&r=2", { dynoId: "abc", path: "/x/y?q=1&r=2" }],
    ["/proxy/abc?q=1", { dynoId: "abc", path: "/?q=1" }],
    ["/proxy/", null],
    ["/commands", null],
    ["/proxyabc/x", null],
  ])("%s", (url, expected) => {
    expect(parseProxyPath(url)).toEqual(expected);
  });
});
