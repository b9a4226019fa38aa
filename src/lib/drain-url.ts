/**
 * Which URLs may receive an app's logs. A drain makes the platform send requests on an
 * app owner's behalf, so it must not reach the platform itself or anything on a private
 * network: only https, no credentials in the URL, not the API host or app hosts, no
 * localhost names, no loopback, private, link-local or other special addresses.
 *
 * The one exception is the operator's DRAIN_ALLOW_HOSTS (`host:port` entries separated by
 * commas or spaces): endpoints named there are allowed even on such addresses, which is
 * how a test platform lets drains reach a local receiver. Names are checked as written;
 * in production Cloudflare's egress does not reach private addresses whatever a name
 * resolves to.
 */

/** The settings the check reads (Worker variables). */
export interface DrainUrlPolicy {
  API_HOST: string;
  APPS_DOMAIN: string;
  DRAIN_ALLOW_HOSTS?: string;
}

/** IPv4 ranges that are not the public internet (RFC 6890 and friends). */
const BLOCKED_V4 = (
  [
    ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16], ["172.16.0.0", 12], ["192.0.0.0", 24],
    ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15], ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
  ] as const
).map(([base, bits]) => ({ base: v4ToInt(base)!, bits }));

function v4ToInt(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return null;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** True for an IPv4 address outside the public internet. Pure. */
export function isSpecialIPv4(addr: string): boolean {
  const n = v4ToInt(addr);
  if (n === null) return false;
  return BLOCKED_V4.some(({ base, bits }) => n >>> (32 - bits) === base >>> (32 - bits));
}

/** Expands an IPv6 address (as the URL parser prints it, without brackets) to eight numbers. */
function v6Groups(addr: string): number[] | null {
  const [head, tail, extra] = addr.split("::");
  if (extra !== undefined) return null;
  const parse = (s: string | undefined) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const a = parse(head);
  const b = parse(tail);
  const groups = tail === undefined ? a : [...a, ...Array(8 - a.length - b.length).fill(0), ...b];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

/** True for an IPv6 address outside the public internet (loopback, unspecified, ULA, link-local, multicast, v4-mapped special). Pure. */
export function isSpecialIPv6(addr: string): boolean {
  const g = v6Groups(addr.toLowerCase());
  if (!g) return true; // unparsable: refuse rather than guess
  if (g.slice(0, 7).every((x) => x === 0) && g[7]! <= 1) return true; // :: and ::1
  if ((g[0]! & 0xfe00) === 0xfc00 || (g[0]! & 0xffc0) === 0xfe80 || (g[0]! & 0xff00) === 0xff00) return true;
  if (g[0] === 0x2001 && g[1] === 0x0db8) return true; // documentation
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms carry an IPv4 address.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    return isSpecialIPv4(`${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`);
  }
  return false;
}

const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain"];

/** Splits DRAIN_ALLOW_HOSTS into lower-case `host:port` entries. */
function allowedHosts(setting: string | undefined): Set<string> {
  return new Set((setting ?? "").split(/[\s,]+/).map((h) => h.trim().toLowerCase()).filter(Boolean));
}

/** Checks a drain URL; returns the reason it is refused, or null when it may be used. Pure. */
export function drainUrlProblem(raw: string, policy: DrainUrlPolicy): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not a valid URL";
  }
  if (raw.length > 2048) return "is longer than 2,048 characters";
  if (url.protocol !== "https:") return "must use https";
  if (url.username || url.password) return "must not contain credentials";
  const port = url.port || "443";
  const host = url.hostname.toLowerCase();
  if (allowedHosts(policy.DRAIN_ALLOW_HOSTS).has(`${host}:${port}`)) return null;
  const apiHost = policy.API_HOST.toLowerCase().replace(/:\d+$/, "");
  const apps = policy.APPS_DOMAIN.toLowerCase();
  if (host === apiHost || host === apps || host.endsWith(`.${apps}`)) return "must not point at the platform itself";
  if (host.startsWith("[")) return isSpecialIPv6(host.slice(1, -1)) ? "must not point at a private, loopback or link-local address" : null;
  if (v4ToInt(host) !== null) return isSpecialIPv4(host) ? "must not point at a private, loopback or link-local address" : null;
  if (host === "localhost" || LOCAL_SUFFIXES.some((s) => host.endsWith(s)) || !host.includes(".")) return "must name a public host";
  return null;
}
