import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, linkSync, writeFileSync, truncateSync, appendFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { SlugArchiveError, TarCheck } from "../../src/lib/tar-check.ts";

/**
 * Builds an uncompressed tar with the system tar (GNU tar) in a temp dir that already
 * holds `app/server.js`; `build` adds more, `args` are tar's (members last).
 */
function tarOf(build: (root: string) => void = () => {}, args: string[] = ["./app"]): Buffer {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-tar-check-"));
  try {
    mkdirSync(path.join(root, "app"));
    writeFileSync(path.join(root, "app", "server.js"), "console.log('hi')\n");
    build(root);
    return execFileSync("tar", ["-cf", "-", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Runs the check over `tar` in chunks of `chunk` bytes; the refusal, or null when accepted. */
function refusal(tar: Uint8Array, chunk = 1000, maxBytes = 64 * 1024 * 1024): SlugArchiveError | null {
  const check = new TarCheck(maxBytes);
  try {
    for (let i = 0; i < tar.length; i += chunk) check.push(tar.subarray(i, i + chunk));
    check.end();
    return null;
  } catch (err) {
    if (err instanceof SlugArchiveError) return err;
    throw err;
  }
}

/** One hand-made ustar header with a correct checksum unless `checksum` says otherwise. */
function header(name: string, opts: { type?: string; size?: number | string; linkname?: string; checksum?: number } = {}): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100);
  b.write("0000644\0", 100);
  b.write("0000000\0", 108);
  b.write("0000000\0", 116);
  const size = opts.size ?? 0;
  b.write(typeof size === "number" ? `${size.toString(8).padStart(11, "0")}\0` : size, 124, 12);
  b.write("00000000000\0", 136);
  b.write(opts.type ?? "0", 156, 1);
  b.write(opts.linkname ?? "", 157, 100);
  b.write("ustar\0" + "00", 257);
  b.fill(0x20, 148, 156);
  const sum = opts.checksum ?? b.reduce((a, x) => a + x, 0);
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return b;
}
const data = (size: number) => Buffer.concat([Buffer.alloc(size, 0x61), Buffer.alloc((512 - (size % 512)) % 512)]);
const END = Buffer.alloc(1024);
const crafted = (...parts: Buffer[]) => Buffer.concat(parts);
const APP = header("app/", { type: "5" });
const LONG = `app/${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(40)}.js`;

const mkdirs = (root: string, ...dirs: string[]) => dirs.forEach((d) => mkdirSync(path.join(root, d), { recursive: true }));
const file = (root: string, name: string, text = "x") => {
  mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
  writeFileSync(path.join(root, name), text);
};

describe("TarCheck accepts Heroku-layout slugs", () => {
  it.each<[string, () => Buffer]>([
    ["./app members", () => tarOf()],
    ["app/ members", () => tarOf(() => {}, ["app"])],
    ["nested directories and an empty one", () => tarOf((r) => (mkdirs(r, "app/empty", "app/a/b/c"), file(r, "app/a/b/c/d.txt")))],
    [
      "GNU long names and long link targets ('L' and 'K')",
      () => tarOf((r) => (file(r, LONG), symlinkSync(path.relative("app", LONG), path.join(r, "app", "long-link")))),
    ],
    [
      "pax long names and link targets ('x')",
      () => tarOf((r) => (file(r, LONG), symlinkSync(path.relative("app", LONG), path.join(r, "app", "long-link"))), ["--format=pax", "./app"]),
    ],
    ["a pax global header ('g')", () => tarOf(() => {}, ["--format=pax", "--pax-option=comment=built", "./app"])],
    ["ustar names split into prefix and name", () => tarOf((r) => file(r, LONG), ["--format=ustar", "app"])],
    [
      "symlinks that stay under app/",
      () =>
        tarOf(
          (r) => (
            mkdirs(r, "app/sub"),
            symlinkSync("server.js", path.join(r, "app/link")),
            symlinkSync("..", path.join(r, "app/sub/up")),
            symlinkSync("../sub/../server.js", path.join(r, "app/sub/s"))
          ),
        ),
    ],
    ["a symlink to ./app itself through the root", () => tarOf((r) => symlinkSync("../app/server.js", path.join(r, "app/via-root")))],
    ["hard links under app/", () => tarOf((r) => (mkdirs(r, "app/bin"), linkSync(path.join(r, "app/server.js"), path.join(r, "app/bin/server.js"))))],
    ["a dangling symlink under app/", () => tarOf((r) => symlinkSync("missing/file", path.join(r, "app/dangling")))],
    [
      "a file whose data looks like a tar header",
      () =>
        tarOf((r) =>
          writeFileSync(
            path.join(r, "app/inner.tar"),
            tarOf(() => {}, ["--transform", "s,^app,../../evil,", "-P", "app"]),
          ),
        ),
    ],
    ["a hand-made ustar archive", () => crafted(APP, header("app/a.txt", { size: 3 }), data(3), END)],
    ["a lone end block", () => crafted(APP, Buffer.alloc(512))],
  ])("%s", (_what, make) => {
    expect(refusal(make())?.message ?? null).toBeNull();
  });

  it("gives the same answer however the bytes are split", () => {
    const good = tarOf((r) => (file(r, LONG), symlinkSync("server.js", path.join(r, "app/link"))), ["--format=pax", "./app"]);
    const bad = tarOf((r) => (file(r, LONG), symlinkSync("../../etc", path.join(r, "app/zz-out"))));
    for (const chunk of [1, 7, 511, 512, 513, 4096, good.length]) {
      expect(refusal(good, chunk), `chunks of ${chunk}`).toBeNull();
      expect(refusal(bad, chunk)?.message, `chunks of ${chunk}`).toBe('symlink "./app/zz-out" points outside ./app (to "../../etc")');
    }
  });
});

describe("TarCheck refuses", () => {
  it.each<[string, () => Buffer, RegExp]>([
    [
      "a '../' member",
      () => tarOf((r) => file(r, "app/evil"), ["-P", "--transform", "s,^app/evil$,../evil,", "app/evil"]),
      /^entry "\.\.\/evil" has a '\.\.' path segment$/,
    ],
    [
      "a '..' inside the path",
      () => tarOf((r) => file(r, "app/evil"), ["-P", "--transform", "s,^app/evil$,app/../../evil,", "app"]),
      /^entry "app\/\.\.\/\.\.\/evil" has a '\.\.' path segment$/,
    ],
    [
      "an absolute member",
      () => tarOf((r) => file(r, "app/evil"), ["-P", "--transform", "s,^app/evil$,/tmp/evil,", "app"]),
      /^entry "\/tmp\/evil" is an absolute path$/,
    ],
    ["a member outside ./app", () => tarOf((r) => file(r, "other/file"), ["./app", "./other"]), /^entry "\.\/other\/" is outside \.\/app$/],
    ["the archive root as a member", () => tarOf(() => {}, ["."]), /^entry "\.\/" is outside \.\/app$/],
    ["app as a file", () => tarOf(() => {}, ["--transform", "s,^app/server.js$,app,", "app/server.js"]), /^entry "app" must be a directory$/],
    [
      "a pax path with '..'",
      () => tarOf((r) => file(r, LONG), ["--format=pax", "-P", "--transform", "s,^app/,app/../../,", LONG]),
      new RegExp(`^entry "app/\\.\\./\\.\\./${LONG.slice(4)}" has a '\\.\\.' path segment$`),
    ],
    ["a pax global path", () => tarOf(() => {}, ["--format=pax", "--pax-option=path=../evil", "app"]), /^entry "\.\.\/evil" has a '\.\.' path segment$/],
    [
      "an absolute symlink",
      () => tarOf((r) => symlinkSync("/etc/passwd", path.join(r, "app/evil"))),
      /^symlink "\.\/app\/evil" points to the absolute path "\/etc\/passwd"$/,
    ],
    [
      "a symlink out of the tree",
      () => tarOf((r) => symlinkSync("../../etc", path.join(r, "app/evil"))),
      /^symlink "\.\/app\/evil" points outside \.\/app \(to "\.\.\/\.\.\/etc"\)$/,
    ],
    ["a symlink to the slug root", () => tarOf((r) => symlinkSync("..", path.join(r, "app/up"))), /^symlink "\.\/app\/up" points outside \.\/app/],
    ["a symlink out through an earlier one", () => tarOf(chain, ["app/x", "app/y"]), /^symlink "app\/y" points outside \.\/app \(to "x\/l\/\.\."\)$/],
    ["a symlink out through a later one", () => tarOf(chain, ["app/y", "app/x"]), /^symlink "app\/y" resolves outside \.\/app$/],
    [
      "a hard link to an absolute path",
      () => tarOf(hardLinked, ["-P", "--transform", "s,^app/hl1$,/etc/passwd,RSh", "app/hl1", "app/hl2"]),
      /^hard link "app\/hl2" points outside \.\/app \(to "\/etc\/passwd"\)$/,
    ],
    [
      "a hard link with '..'",
      () => tarOf(hardLinked, ["-P", "--transform", "s,^app/hl1$,app/../../etc/passwd,RSh", "app/hl1", "app/hl2"]),
      /^hard link "app\/hl2" points outside/,
    ],
    [
      "a hard link to a symlink that escapes from the link's place",
      () => tarOf(linkedSymlink, ["app/a", "app/h"]),
      /^symlink "app\/h" points outside \.\/app \(to "\.\.\/\.\.\/x"\)$/,
    ],
    [
      "a member beneath a symlink",
      () =>
        tarOf((r) => (file(r, "app/t/file"), symlinkSync("t", path.join(r, "app/s"))), ["--transform", "s,^app/t/file$,app/s/file,", "app/s", "app/t/file"]),
      /^entry "app\/s\/file" lies beneath the symlink "app\/s"$/,
    ],
    ["a FIFO", () => tarOf((r) => execFileSync("mkfifo", [path.join(r, "app/pipe")])), /^entry "\.\/app\/pipe" is a FIFO$/],
    ["a character device", () => crafted(APP, header("app/tty", { type: "3" }), END), /^entry "app\/tty" is a device file$/],
    ["a block device", () => crafted(APP, header("app/sda", { type: "4" }), END), /^entry "app\/sda" is a device file$/],
    ["a GNU sparse file", () => tarOf(sparse, ["--sparse", "app"]), /^entry "app\/sparse" has an unsupported type "S"$/],
    ["a pax sparse file", () => tarOf(sparse, ["--sparse", "--format=pax", "app"]), /^it has a sparse file$/],
    [
      "a directory with data",
      () => crafted(APP, header("app/d/", { type: "5", size: 3 }), data(3), END),
      /^entry "app\/d\/" is a link or directory with data$/,
    ],
    ["a malformed size", () => crafted(APP, header("app/a", { size: "12x4\0" }), END), /^a tar header has a malformed size "12x4"$/],
    ["a bad checksum on the first header", () => crafted(header("app/", { type: "5", checksum: 1234 }), END), /^it is not a tar archive$/],
    ["a bad checksum on a later header", () => crafted(APP, header("app/a", { checksum: 1234 }), END), /^the tar header after "app\/" has a bad checksum$/],
    ["text that is not tar", () => Buffer.from("just some text\n".repeat(100)), /^it is not a tar archive$/],
    ["an empty input", () => Buffer.alloc(0), /^it is not a tar archive \(it is empty\)$/],
    ["an archive of only end blocks", () => END, /^it has no entries$/],
    ["a truncated header", () => crafted(APP, header("app/a", { size: 3 }).subarray(0, 300)), /^it is truncated inside the header after entry "app\/"$/],
    ["truncated data", () => crafted(APP, header("app/a", { size: 3000 }), data(3000).subarray(0, 1000)), /^it is truncated inside entry "app\/a"$/],
    ["a missing end marker", () => crafted(APP, header("app/a", { size: 3 }), data(3)), /^it is truncated: it has no end-of-archive marker$/],
    [
      "a long name with nothing after it",
      () => crafted(APP, header("././@LongLink", { type: "L", size: 10 }), data(10), END),
      /^it is truncated after an extended header$/,
    ],
    [
      "a cut long name",
      () => crafted(APP, header("././@LongLink", { type: "L", size: 1000 }), data(1000).subarray(0, 600)),
      /^it is truncated inside an extended header$/,
    ],
    [
      "entries after the end marker",
      () => crafted(APP, Buffer.alloc(512), header("../evil", { size: 3 }), data(3), END),
      /^it has data after its end-of-archive marker$/,
    ],
  ])("%s", (_what, make, expected) => {
    const err = refusal(make());
    expect(err?.message).toMatch(expected);
    expect(err?.kind).toBe("invalid");
  });

  it("an archive that unpacks past the limit, as too large", () => {
    const big = tarOf((r) => writeFileSync(path.join(r, "app/big.bin"), Buffer.alloc(200 * 1024)));
    expect(refusal(big, 4096, 256 * 1024)).toBeNull();
    const err = refusal(big, 4096, 100 * 1024);
    expect(err?.kind).toBe("too_large");
    expect(err?.message).toBe(`it unpacks to more than ${100 / 1024} MB`);
  });
});

/** app/x/l -> .. stays under app/; app/y -> x/l/.. leads to the slug root once l is followed. */
function chain(root: string) {
  mkdirs(root, "app/x");
  symlinkSync("..", path.join(root, "app/x/l"));
  symlinkSync("x/l/..", path.join(root, "app/y"));
}

function hardLinked(root: string) {
  file(root, "app/hl1");
  linkSync(path.join(root, "app/hl1"), path.join(root, "app/hl2"));
}

/** app/a/b/s -> ../../x is fine where it is; a hard link to it at app/h reads the same target from app/. */
function linkedSymlink(root: string) {
  mkdirs(root, "app/a/b");
  symlinkSync("../../x", path.join(root, "app/a/b/s"));
  execFileSync("ln", ["-P", path.join(root, "app/a/b/s"), path.join(root, "app/h")]);
}

function sparse(root: string) {
  const name = path.join(root, "app/sparse");
  writeFileSync(name, "hi");
  truncateSync(name, 2 * 1024 * 1024);
  appendFileSync(name, "x");
}
