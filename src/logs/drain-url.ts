import ipaddr from "ipaddr.js";

/**
 * Which URLs may receive an app's logs. A drain makes the platform send requests on an
 * app owner's behalf, so it must not reach the platform itself or anything on a private
 * network: only https, syslog or syslog+tls (with a port), no credentials in the URL, not
 * the API host or app hosts, no localhost names, no loopback, private, link-local or other
 * special addresses, judged on the host as normalized (case, trailing dot, IPv4 forms).
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

/**
 * True for an IP address literal outside the public unicast internet: loopback, private,
 * shared, link-local, multicast, reserved and documentation ranges, and the IPv6 forms that
 * reach an IPv4 address through a translator (NAT64, 6to4, Teredo). An IPv4-mapped IPv6
 * address is judged by its IPv4 address. The ranges are ipaddr.js's (RFC 6890 and its
 * successors). Pure.
 */
export function isSpecialAddress(literal: string): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.parse(literal);
  } catch {
    return true; // unparsable: refuse rather than guess
  }
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.range() !== "unicast";
}

const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain"];

/** Splits DRAIN_ALLOW_HOSTS into lower-case `host:port` entries. */
function allowedHosts(setting: string | undefined): Set<string> {
  return new Set(
    (setting ?? "")
      .split(/[\s,]+/)
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
}

/** Whether `host:port` is one of the operator's DRAIN_ALLOW_HOSTS. Pure. */
export function allowedDrainHost(policy: Pick<DrainUrlPolicy, "DRAIN_ALLOW_HOSTS">, host: string, port: string): boolean {
  return allowedHosts(policy.DRAIN_ALLOW_HOSTS).has(`${host.toLowerCase().replace(/\.$/, "")}:${port}`);
}

/** The schemes a drain may use, with their default ports (syslog ones must name theirs). */
const SCHEMES: Record<string, string | null> = { "https:": "443", "syslog:": null, "syslog+tls:": null };

/** Checks a drain URL; returns the reason it is refused, or null when it may be used. Pure. */
export function drainUrlProblem(raw: string, policy: DrainUrlPolicy): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not a valid URL";
  }
  if (raw.length > 2048) return "is longer than 2,048 characters";
  if (!(url.protocol in SCHEMES)) return "must use https, syslog or syslog+tls";
  if (url.username || url.password) return "must not contain credentials";
  const syslog = url.protocol !== "https:";
  if (syslog && (!url.port || url.port === "0")) return "must name its port (syslog+tls://logs.example.com:6514)";
  if (syslog && ((url.pathname && url.pathname !== "/") || url.search || url.hash)) return "must be a host and port only";
  const port = url.port || SCHEMES[url.protocol]!;
  const host = drainHost(url);
  if (host === null) return "is not a valid URL";
  if (allowedHosts(policy.DRAIN_ALLOW_HOSTS).has(`${host}:${port}`)) return null;
  const apiHost = policy.API_HOST.toLowerCase().replace(/:\d+$/, "");
  const apps = policy.APPS_DOMAIN.toLowerCase();
  if (host === apiHost || host === apps || host.endsWith(`.${apps}`)) return "must not point at the platform itself";
  // The URL parser has already normalized IPv4 literals (`2130706433` is 127.0.0.1).
  const literal = host.startsWith("[") ? host.slice(1, -1) : ipaddr.IPv4.isValidFourPartDecimal(host) ? host : null;
  if (literal !== null) return isSpecialAddress(literal) ? "must not point at a private, loopback or link-local address" : null;
  if (host === "localhost" || LOCAL_SUFFIXES.some((s) => host.endsWith(s)) || !host.includes(".")) return "must name a public host";
  return null;
}

/**
 * A drain URL's host as the check and the sender see it: what an https URL's parser makes
 * of it (lower case, IPv4 in dotted form, IPv6 in brackets), also for the syslog schemes,
 * whose hosts the parser leaves as written, and without a trailing dot. Null when it is
 * not a host. Pure.
 */
export function drainHost(url: URL): string | null {
  try {
    return new URL(`https://${url.host}/`).hostname.replace(/\.$/, "");
  } catch {
    return null;
  }
}
