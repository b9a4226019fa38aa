/**
 * A streaming check of a slug's tar archive (ustar, GNU or pax) as it is uploaded: only
 * headers are parsed, data is skipped, so memory stays small whatever the slug's size.
 * A slug must unpack to Heroku's layout, everything under `./app`, and nothing in it may
 * reach outside that tree when the host agent extracts it: no absolute or `..` names, no
 * links out, no devices, nothing written through a link, and no truncation.
 */

const BLOCK = 512;
/** Long names and pax headers are held in memory; real ones are far smaller. */
const MAX_META_BYTES = 1024 * 1024;
/** Bytes of symlink names and targets kept for the final resolution pass. */
const MAX_LINK_BYTES = 8 * 1024 * 1024;
/** Symlinks followed while resolving one path, as Linux's ELOOP limit. */
const MAX_HOPS = 40;
const utf8 = new TextDecoder();

/** What a slug may unpack to, whether uploaded through the Slug API or made by a build. */
export const MAX_UNPACKED_SLUG_BYTES = 500 * 1024 * 1024;

/** Why a slug tarball was refused: `too_large` past the size limit, `invalid` otherwise. */
export class SlugArchiveError extends Error {
  constructor(
    readonly kind: "invalid" | "too_large",
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new SlugArchiveError("invalid", message);
const q = (name: string) => JSON.stringify(name);

/** A NUL-terminated field as text. */
function text(b: Uint8Array, at: number, len: number): string {
  const field = b.subarray(at, at + len);
  const end = field.indexOf(0);
  return utf8.decode(end < 0 ? field : field.subarray(0, end));
}

/** A numeric header field: octal digits padded with NUL or space, or GNU's base-256. */
function num(b: Uint8Array, at: number, len: number, what: string): number {
  if (b[at]! & 0x80) {
    if (b[at] === 0xff) throw invalid(`a tar header has a negative ${what}`);
    let n = b[at]! & 0x7f;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = text(b, at, len).trim();
  if (!/^[0-7]*$/.test(s)) throw invalid(`a tar header has a malformed ${what} ${q(s)}`);
  return s ? parseInt(s, 8) : 0;
}

/** Whether the header's stored checksum matches its bytes (unsigned, or the historic signed sum). */
function checksumOk(b: Uint8Array): boolean {
  const stored = text(b, 148, 8).trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  const want = parseInt(stored, 8);
  return want === unsigned || want === signed;
}

/** What makes a member name unsafe (absolute, `..`, or not under `app/`), or null. */
function pathProblem(name: string): string | null {
  if (name.includes("\0")) return "contains a NUL byte";
  if (name.startsWith("/")) return "is an absolute path";
  const parts = segments(name);
  if (parts.includes("..")) return "has a '..' path segment";
  if (parts[0] !== "app") return "is outside ./app";
  return null;
}

/** A relative name's segments, without empty and `.` ones. */
const segments = (name: string) => name.split("/").filter((p) => p && p !== ".");

/**
 * Follows a path from the slug's root the way the kernel will once it is unpacked, through
 * the symlinks in `links`: a link may stay under `app/` on its own yet leave it through
 * another with `..`. Null when it climbs above the root or loops.
 */
function resolve(links: Map<string, string>, path: string[]): string[] | null {
  const out: string[] = [];
  let rest = path;
  for (let hops = 0; rest.length; ) {
    const [s, ...more] = rest as [string, ...string[]];
    rest = more;
    if (s === "" || s === ".") continue;
    if (s === "..") {
      if (!out.pop()) return null;
      continue;
    }
    out.push(s);
    const target = links.get(out.join("/"));
    if (target === undefined) continue;
    if (++hops > MAX_HOPS || target.startsWith("/")) return null;
    out.pop();
    rest = [...target.split("/"), ...rest];
  }
  return out;
}

/** Parses pax records (`<len> <key>=<value>\n`) into a map. */
function paxRecords(data: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = space > at ? Number(utf8.decode(data.subarray(at, space))) : NaN;
    if (!Number.isInteger(len) || len <= space - at || at + len > data.length || data[at + len - 1] !== 0x0a) {
      if (data.subarray(at).every((x) => x === 0)) break; // NUL padding after the last record
      throw invalid("a pax extended header is malformed");
    }
    const record = utf8.decode(data.subarray(space + 1, at + len - 1));
    const eq = record.indexOf("=");
    if (eq <= 0) throw invalid("a pax extended header is malformed");
    out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * The tar parser: feed it the uncompressed bytes with `push` in any chunking, then call
 * `end`. Both throw SlugArchiveError naming the first offending entry.
 */
export class TarCheck {
  private total = 0;
  private readonly block = new Uint8Array(BLOCK);
  private filled = 0;
  /** Data and padding of the current entry still to pass over. */
  private skip = 0;
  /** Data of a long-name or pax entry being collected, with how much has arrived. */
  private meta: { type: string; data: Uint8Array; at: number } | null = null;
  private ended = false;
  private current = "";
  private longName: string | null = null;
  private longLink: string | null = null;
  private local = new Map<string, string>();
  private readonly global = new Map<string, string>();
  /** Symlinks seen so far, by normalized name, with their targets. */
  private readonly links = new Map<string, string>();
  private linkBytes = 0;
  private entries = 0;

  /** `maxBytes` bounds the uncompressed archive, so a small gzip bomb cannot pass. */
  constructor(private readonly maxBytes: number) {}

  /** Feeds the next uncompressed bytes. */
  push(chunk: Uint8Array): void {
    this.total += chunk.length;
    if (this.total > this.maxBytes) throw new SlugArchiveError("too_large", `it unpacks to more than ${this.maxBytes / 1024 / 1024} MB`);
    let i = 0;
    while (i < chunk.length) {
      if (this.ended) {
        // Only zero padding may follow the end marker: tar would stop reading there, so
        // anything after it would be entries nobody checked.
        for (; i < chunk.length; i++) if (chunk[i] !== 0) throw invalid("it has data after its end-of-archive marker");
        return;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        const meta = this.meta;
        if (meta) {
          const take = Math.min(n, meta.data.length - meta.at);
          meta.data.set(chunk.subarray(i, i + take), meta.at);
          meta.at += take;
        }
        i += n;
        this.skip -= n;
        if (this.skip === 0 && meta) this.finishMeta(meta.type, meta.data);
        continue;
      }
      const n = Math.min(BLOCK - this.filled, chunk.length - i);
      this.block.set(chunk.subarray(i, i + n), this.filled);
      this.filled += n;
      i += n;
      if (this.filled === BLOCK) {
        this.filled = 0;
        this.header(this.block);
      }
    }
  }

  /** Called at the end of the input: refuses a truncated or empty archive, then checks every symlink as extracted. */
  end(): void {
    if (!this.ended) {
      if (this.total === 0) throw invalid("it is not a tar archive (it is empty)");
      if (this.meta) throw invalid("it is truncated inside an extended header");
      if (this.skip > 0) throw invalid(`it is truncated inside entry ${q(this.current)}`);
      if (this.filled > 0) throw invalid(`it is truncated inside the header after ${this.current ? `entry ${q(this.current)}` : "the start"}`);
      throw invalid("it is truncated: it has no end-of-archive marker");
    }
    if (this.entries === 0) throw invalid("it has no entries");
    // Links met later can change where an earlier one leads; each is followed again with all known.
    for (const name of this.links.keys()) if (resolve(this.links, name.split("/"))?.[0] !== "app") throw invalid(`symlink ${q(name)} resolves outside ./app`);
  }

  private header(b: Uint8Array): void {
    if (b.every((x) => x === 0)) {
      if (this.meta || this.longName !== null || this.longLink !== null || this.local.size) throw invalid("it is truncated after an extended header");
      this.ended = true;
      return;
    }
    if (!checksumOk(b)) throw invalid(this.entries ? `the tar header after ${q(this.current)} has a bad checksum` : "it is not a tar archive");
    const type = b[156] === 0 ? "0" : String.fromCharCode(b[156]!);
    const pax = (key: string) => this.local.get(key) ?? this.global.get(key);
    const paxSize = pax("size");
    const isMeta = type === "L" || type === "K" || type === "x" || type === "g";
    const size = paxSize !== undefined && !isMeta ? (/^\d+$/.test(paxSize) ? Number(paxSize) : NaN) : num(b, 124, 12, "size");
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`a tar header has an invalid size ${q(String(paxSize))}`);
    this.skip = Math.ceil(size / BLOCK) * BLOCK;
    if (isMeta) {
      if (size > MAX_META_BYTES) throw invalid(`an extended header of ${size} bytes is too large`);
      this.meta = { type, data: new Uint8Array(size), at: 0 };
      if (size === 0) this.finishMeta(type, this.meta.data);
      return;
    }
    // POSIX ustar keeps a prefix field; GNU's format uses those bytes for other things.
    const prefix = text(b, 257, 6) === "ustar" && b[262] === 0 ? text(b, 345, 155) : "";
    const name = pax("path") ?? this.longName ?? (prefix ? `${prefix}/${text(b, 0, 100)}` : text(b, 0, 100));
    const target = pax("linkpath") ?? this.longLink ?? text(b, 157, 100);
    this.current = name;
    this.longName = this.longLink = null;
    this.local = new Map();
    this.entries++;
    this.entry(type, name, target, size);
  }

  private entry(type: string, name: string, target: string, size: number): void {
    const problem = pathProblem(name);
    if (problem) throw invalid(`entry ${q(name)} ${problem}`);
    const parts = segments(name);
    this.refuseBeneathLink(parts, name);
    if (parts.length === 1 && type !== "5") throw invalid(`entry ${q(name)} must be a directory`);
    if ((type === "1" || type === "2" || type === "5") && size !== 0) throw invalid(`entry ${q(name)} is a link or directory with data`);
    if (type === "3" || type === "4") throw invalid(`entry ${q(name)} is a device file`);
    if (type === "6") throw invalid(`entry ${q(name)} is a FIFO`);
    if (!["0", "7", "5", "1", "2"].includes(type)) throw invalid(`entry ${q(name)} has an unsupported type ${q(type)}`);
    if (type === "2") this.symlink(name, parts, target);
    if (type !== "1") return;
    // A hard link's target is another member's name, relative to the archive root.
    if (pathProblem(target)) throw invalid(`hard link ${q(name)} points outside ./app (to ${q(target)})`);
    const linked = segments(target);
    this.refuseBeneathLink(linked, name);
    // Linking to a symlink makes another symlink with the same target, read from the new place.
    const symlinkTarget = this.links.get(linked.join("/"));
    if (symlinkTarget !== undefined) this.symlink(name, parts, symlinkTarget);
  }

  /** A symlink must stay under `app/` read from its own directory; it is kept for the final pass. */
  private symlink(name: string, parts: string[], target: string): void {
    if (target.startsWith("/")) throw invalid(`symlink ${q(name)} points to the absolute path ${q(target)}`);
    if (!target || target.includes("\0")) throw invalid(`symlink ${q(name)} has an invalid target`);
    if (resolve(this.links, [...parts.slice(0, -1), ...target.split("/")])?.[0] !== "app")
      throw invalid(`symlink ${q(name)} points outside ./app (to ${q(target)})`);
    this.linkBytes += name.length + target.length;
    if (this.linkBytes > MAX_LINK_BYTES) throw invalid("it has too many symlinks");
    this.links.set(parts.join("/"), target);
  }

  private finishMeta(type: string, data: Uint8Array): void {
    this.meta = null;
    if (type === "L" || type === "K") {
      this[type === "L" ? "longName" : "longLink"] = text(data, 0, data.length);
      return;
    }
    const records = paxRecords(data);
    // GNU tar takes the real name of a sparse file from these keys; sparse files are not slugs.
    if ([...records.keys()].some((k) => k.startsWith("GNU.sparse."))) throw invalid("it has a sparse file");
    for (const [k, v] of records) (type === "g" ? this.global : this.local).set(k, v);
  }

  /** tar would write through a symlink met earlier in the archive: a way out of the tree. */
  private refuseBeneathLink(parts: string[], name: string): void {
    if (!this.links.size) return;
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (this.links.has(dir)) throw invalid(`entry ${q(name)} lies beneath the symlink ${q(dir)}`);
    }
  }
}
