import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PackError, PackVerifier, TooLargeError, verifyingStream, type Sha1 } from "../../src/git/pack.ts";
import { concatBytes } from "../../src/git/pkt-line.ts";
import { chunked, drain } from "../support/streams.ts";

const nodeSha1 = (): Sha1 => {
  const hash = createHash("sha1");
  return { update: (b) => void hash.update(b), digest: async () => new Uint8Array(hash.digest()) };
};

/** A pack from real git: three commits of a small repository. */
let pack: Uint8Array;
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "git-pack-test-"));
  const git = (...args: string[]) => execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { encoding: "utf8" });
  git("init", "-q");
  for (let i = 0; i < 3; i++) {
    writeFileSync(path.join(dir, "file.txt"), `line ${i}\n`.repeat(50 + i));
    git("add", ".");
    git("commit", "-qm", `commit ${i}`);
  }
  const revs = git("rev-list", "--objects", "HEAD");
  pack = new Uint8Array(execFileSync("git", ["-C", dir, "pack-objects", "--stdout"], { input: revs }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function verify(bytes: Uint8Array, chunk = 7) {
  const v = new PackVerifier(nodeSha1());
  const reader = chunked(bytes, chunk).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) await v.push(r.value);
  return v.finish();
}

const header = (version: number, objects: number) => {
  const h = new Uint8Array(12);
  h.set([0x50, 0x41, 0x43, 0x4b]);
  new DataView(h.buffer).setUint32(4, version);
  new DataView(h.buffer).setUint32(8, objects);
  return h;
};
/** A pack of `body` with a correct trailer. */
const sealed = (body: Uint8Array) => concatBytes([body, new Uint8Array(createHash("sha1").update(body).digest())]);

describe("PackVerifier", () => {
  it.each([1, 7, 20, 21, 4096])("accepts git's own pack fed in chunks of %i bytes", async (size) => {
    const summary = await verify(pack, size);
    expect(summary.version).toBe(2);
    expect(summary.objects).toBe(9);
    expect(summary.size).toBe(pack.length);
    expect(summary.checksum).toBe(Buffer.from(pack.subarray(-20)).toString("hex"));
  });

  it("accepts an empty pack (a push of objects the server has)", async () => {
    expect(await verify(sealed(header(2, 0)))).toMatchObject({ objects: 0, size: 32 });
  });

  const flipped = (at: number) => {
    const copy = pack.slice();
    copy[at] = copy[at]! ^ 0xff;
    return copy;
  };

  it.each([
    ["nothing at all", () => new Uint8Array(0), /no pack/],
    ["half a header", () => pack.slice(0, 6), /header is incomplete/],
    ["a header without a trailer", () => pack.slice(0, 20), /checksum is missing/],
    ["a pack cut short by one byte", () => pack.slice(0, -1), /checksum does not match/],
    ["a pack cut in the middle", () => pack.slice(0, pack.length >> 1), /checksum does not match/],
    ["a pack with a flipped byte in an object", () => flipped(40), /checksum does not match/],
    ["a pack with a flipped byte in its trailer", () => flipped(pack.length - 1), /checksum does not match/],
    ["extra bytes after the pack", () => concatBytes([pack, new Uint8Array([1])]), /checksum does not match/],
    ["a sealed header that claims objects", () => sealed(header(2, 3)), /holds no objects/],
    ["a wrong signature", () => sealed(concatBytes([new TextEncoder().encode("PACX"), header(2, 0).subarray(4)])), /not a git pack/],
    ["version 1", () => sealed(header(1, 0)), /version 1 is not supported/],
    ["version 4", () => sealed(header(4, 0)), /version 4 is not supported/],
  ])("rejects %s", async (_label, make, message) => {
    const err = await verify(make()).catch((e) => e);
    expect(err).toBeInstanceOf(PackError);
    expect(err.message).toMatch(message);
  });
});

describe("verifyingStream", () => {
  it("passes the pack through unchanged and summarises it", async () => {
    const { stream, summary } = verifyingStream(chunked(pack, 13), nodeSha1(), 1 << 20);
    expect(await drain(stream)).toEqual(pack);
    expect((await summary).objects).toBe(9);
  });

  it("errors the stream and the summary past the byte limit", async () => {
    const { stream, summary } = verifyingStream(chunked(pack, 13), nodeSha1(), pack.length - 1);
    await expect(drain(stream)).rejects.toBeInstanceOf(TooLargeError);
    await expect(summary).rejects.toThrow(/larger than/);
  });

  it("errors the stream when the pack turns out corrupt at its end", async () => {
    const { stream, summary } = verifyingStream(chunked(pack.slice(0, -3), 13), nodeSha1(), 1 << 20);
    await expect(drain(stream)).rejects.toBeInstanceOf(PackError);
    await expect(summary).rejects.toBeInstanceOf(PackError);
  });

  it("errors at once on a bad header, before the rest is read", async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
      },
    });
    const { stream } = verifyingStream(endless, nodeSha1(), 1 << 30);
    await expect(drain(stream)).rejects.toThrow(/not a git pack/);
    expect(pulled).toBeLessThan(10);
  });
});
