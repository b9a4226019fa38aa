import { describe, expect, it } from "vitest";
import { PktLineReader } from "../../src/git/pkt-line.ts";
import { finalReport, MAX_BAND_PAYLOAD, progressLines, refAdvertisement, reportStatus, sideband } from "../../src/git/responses.ts";
import { chunked } from "../support/streams.ts";

const dec = new TextDecoder();
const text = (b: Uint8Array) => dec.decode(b);
const ID = "0123456789abcdef0123456789abcdef01234567";

/** Every packet of a pkt-line byte string, as text ("<flush>" for 0000). */
async function packets(bytes: Uint8Array): Promise<Array<Uint8Array | "flush">> {
  const reader = new PktLineReader(chunked(bytes, 1 << 20));
  const out: Array<Uint8Array | "flush"> = [];
  for (let p = await reader.read(); p !== null; p = await reader.read()) out.push(p);
  return out;
}

describe("refAdvertisement", () => {
  it("advertises capabilities^{} with the zero id when nothing is deployed", () => {
    expect(text(refAdvertisement([]))).toBe(
      "001f# service=git-receive-pack\n0000" +
        "007f0000000000000000000000000000000000000000 capabilities^{}\0report-status side-band-64k delete-refs ofs-delta agent=dynoplane\n" +
        "0000",
    );
  });

  it("puts the capabilities on the first ref only", () => {
    const adv = text(
      refAdvertisement(
        [
          { id: ID, name: "refs/heads/main" },
          { id: ID, name: "refs/heads/master" },
        ],
        ["report-status"],
      ),
    );
    expect(adv).toBe(`001f# service=git-receive-pack\n0000` + `004b${ID} refs/heads/main\0report-status\n` + `003f${ID} refs/heads/master\n` + "0000");
  });
});

describe("sideband", () => {
  it.each([
    [1, "abc", "0008\x01abc"],
    [2, "hi\n", "0008\x02hi\n"],
    [3, "fatal", "000a\x03fatal"],
    [2, "", "0005\x02"],
  ] as const)("frames band %i data %j", (band, data, framed) => {
    expect(text(sideband(band, data))).toBe(framed);
  });

  it.each([MAX_BAND_PAYLOAD, MAX_BAND_PAYLOAD + 1, 3 * MAX_BAND_PAYLOAD + 17])("splits %i bytes into packets of at most 65520 bytes", async (n) => {
    const data = Uint8Array.from({ length: n }, (_, i) => i % 256);
    const parts = (await packets(sideband(1, data))) as Uint8Array[];
    expect(parts).toHaveLength(Math.ceil(n / MAX_BAND_PAYLOAD));
    for (const p of parts) {
      expect(p[0]).toBe(1);
      expect(p.length + 4).toBeLessThanOrEqual(65520);
    }
    const joined = parts.flatMap((p) => [...p.subarray(1)]);
    expect(Uint8Array.from(joined)).toEqual(data);
  });
});

describe("progressLines", () => {
  it("sends each line with a newline on band 2, without terminal control characters", () => {
    expect(text(progressLines(["-----> Building", "a\x1b[31mred\r"]))).toBe("001e\x02-----> Building\na[31mred\n");
    expect(progressLines([]).length).toBe(0);
  });
});

describe("reportStatus", () => {
  it.each([
    ["an accepted push", null, [{ ref: "refs/heads/main" }], "000eunpack ok\n0017ok refs/heads/main\n0000"],
    [
      "a refused branch next to a deployed one",
      null,
      [{ ref: "refs/heads/main" }, { ref: "refs/heads/x", error: "pushes to branches other than main or master are not deployed" }],
      "000eunpack ok\n0017ok refs/heads/main\n0052ng refs/heads/x pushes to branches other than main or master are not deployed\n0000",
    ],
    ["a failed build", null, [{ ref: "refs/heads/main", error: "build failed" }], "000eunpack ok\n0024ng refs/heads/main build failed\n0000"],
    [
      "a corrupt pack",
      "the pack is corrupt",
      [{ ref: "refs/heads/main", error: "unpacker error" }],
      "001funpack the pack is corrupt\n0026ng refs/heads/main unpacker error\n0000",
    ],
    ["a reason with newlines", null, [{ ref: "refs/heads/main", error: "a\nb\r\n" }], "000eunpack ok\n001bng refs/heads/main a b\n0000"],
  ])("reports %s", (_label, unpack, refs, expected) => {
    expect(text(reportStatus(unpack, refs))).toBe(expected);
  });

  it("wraps the report in band 1 and ends with a flush when side-band is on", async () => {
    const report = reportStatus(null, [{ ref: "refs/heads/main" }]);
    const framed = finalReport(true, report);
    const parts = await packets(framed);
    expect(parts.at(-1)).toBe("flush");
    expect((parts[0] as Uint8Array)[0]).toBe(1);
    expect((parts[0] as Uint8Array).subarray(1)).toEqual(report);
    expect(finalReport(false, report)).toEqual(report);
  });
});
