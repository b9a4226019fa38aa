/**
 * npm's semver ranges, enough to check `engines.node` against the host's node: comparators
 * (`>=`, `<`, `=` …), caret, tilde, x-ranges (`20.x`, `20`, `*`), hyphen ranges and `||`.
 */

/** A range that npm itself would not accept; the message quotes it. */
export class SemverRangeError extends Error {}

interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Prerelease identifiers; an upper bound `<2.0.0-0` excludes 2.0.0's prereleases too. */
  pre: string[];
}

type Op = "<" | "<=" | ">" | ">=" | "=";
interface Comparator {
  op: Op;
  v: Version;
}

const PARTIAL = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Parses a full version (`v20.11.1`); null when it is not one. */
export function parseVersion(text: string): { major: number; minor: number; patch: number; pre: string[] } | null {
  const m = PARTIAL.exec(text.trim());
  if (!m || [m[1], m[2], m[3]].some((p) => p === undefined || !/^\d+$/.test(p))) return null;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ? m[4].split(".") : [] };
}

function comparePre(a: string[], b: string[]): number {
  if (!a.length || !b.length) return b.length - a.length; // a release is above its prereleases
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const [x, y] = [a[i], b[i]];
    if (x === undefined || y === undefined) return x === undefined ? -1 : 1;
    const [nx, ny] = [/^\d+$/.test(x), /^\d+$/.test(y)];
    if (nx && ny && Number(x) !== Number(y)) return Number(x) - Number(y);
    if (nx !== ny) return nx ? -1 : 1;
    if (!nx && x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

function compare(a: Version, b: Version): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch || comparePre(a.pre, b.pre);
}

const v = (major: number, minor = 0, patch = 0, pre: string[] = []): Version => ({ major, minor, patch, pre });
/** The lowest version with this tuple: `<v(…)-0` excludes every prerelease of it. */
const floor = (major: number, minor = 0, patch = 0) => v(major, minor, patch, ["0"]);

/** One comparator (`^1.2`, `>=18`, `1.x` …) as primitive comparators; [] matches anything. */
function desugar(token: string, range: string): Comparator[] {
  const m = /^(\^|~>?|>=|<=|>|<|=)?(.*)$/.exec(token)!;
  const op = m[1] ?? "";
  const p = PARTIAL.exec(m[2]!);
  if (!p) throw new SemverRangeError(`"${range}" is not a valid semver range`);
  const wild = (s: string | undefined) => s === undefined || /^[xX*]$/.test(s);
  const [M, mi, pa] = [p[1], p[2], p[3]].map((s) => (wild(s) ? null : Number(s))) as [number | null, number | null, number | null];
  const pre = p[4] ? p[4].split(".") : [];
  if (M === null) return op === "<" || op === ">" ? [{ op: "<", v: floor(0) }] : [];
  if (mi === null && pa !== null) throw new SemverRangeError(`"${range}" is not a valid semver range`);
  const full = mi !== null && pa !== null;
  const at = v(M, mi ?? 0, pa ?? 0, pre);
  const nextUp = mi === null ? floor(M + 1) : floor(M, mi + 1);
  switch (op) {
    case "^": {
      const upper = M > 0 || mi === null ? floor(M + 1) : mi > 0 || pa === null ? floor(0, mi + 1) : floor(0, 0, pa + 1);
      return [{ op: ">=", v: at }, { op: "<", v: upper }];
    }
    case "~":
    case "~>":
      return [{ op: ">=", v: at }, { op: "<", v: nextUp }];
    case ">":
      return full ? [{ op: ">", v: at }] : [{ op: ">=", v: mi === null ? v(M + 1) : v(M, mi + 1) }];
    case ">=":
      return [{ op: ">=", v: at }];
    case "<":
      return [{ op: "<", v: full ? at : floor(M, mi ?? 0) }];
    case "<=":
      return full ? [{ op: "<=", v: at }] : [{ op: "<", v: nextUp }];
    default:
      return full ? [{ op: "=", v: at }] : [{ op: ">=", v: at }, { op: "<", v: nextUp }];
  }
}

/** `A - B`: from A (its missing parts as zeros) through all of B (its missing parts as wildcards). */
function hyphen(lo: string, hi: string, range: string): Comparator[] {
  const low = desugar(`>=${lo}`, range);
  const high = desugar(`<=${hi}`, range);
  return [...low, ...high];
}

/** Parses a range into alternatives (`||`), each a list of comparators that must all hold. */
export function parseRange(range: string): Comparator[][] {
  if (range.length > 256) throw new SemverRangeError("the range is too long");
  return range.split("||").map((alt) => {
    const text = alt.trim().replace(/(\^|~>?|>=|<=|>|<|=)\s+/g, "$1");
    if (text === "") return [];
    const h = /^(\S+)\s+-\s+(\S+)$/.exec(text);
    if (h) return hyphen(h[1]!, h[2]!, range);
    return text.split(/\s+/).flatMap((token) => desugar(token, range));
  });
}

function test(c: Comparator, ver: Version): boolean {
  const d = compare(ver, c.v);
  return c.op === "<" ? d < 0 : c.op === "<=" ? d <= 0 : c.op === ">" ? d > 0 : c.op === ">=" ? d >= 0 : d === 0;
}

/**
 * Whether `version` is in `range` (npm's rules: a prerelease only matches a set that names
 * a prerelease of the same major.minor.patch). Throws SemverRangeError for a bad range.
 */
export function satisfies(version: string, range: string): boolean {
  const ver = parseVersion(version);
  if (!ver) throw new SemverRangeError(`"${version}" is not a version`);
  return parseRange(range).some((set) => {
    if (!set.every((c) => test(c, ver))) return false;
    if (!ver.pre.length) return true;
    return set.some((c) => c.v.pre.length > 0 && c.v.major === ver.major && c.v.minor === ver.minor && c.v.patch === ver.patch);
  });
}
