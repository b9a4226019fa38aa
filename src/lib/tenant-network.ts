import { allowedDrainHost } from "../logs/drain-url.ts";

/** What decides where a tenant-named URL is sent through. */
export interface TenantNetworkEnv {
  /** A network that admits only public addresses (workerd's `network` service, `allow = ["public"]`); unset on Cloudflare. */
  PUBLIC_NETWORK?: Fetcher;
  DRAIN_ALLOW_HOSTS?: string;
}

/**
 * The way out for a URL a tenant named (a log drain, a webhook): through PUBLIC_NETWORK,
 * which connects only where the name resolves to a public address (and none of the
 * platform's own), judged on the address at connect time, so a name that resolves to
 * loopback or a private network reaches nothing, whatever the check of the URL as written
 * saw. Every refusal fails the same way as a closed port, so delivery says nothing about
 * what answers inside. On Cloudflare, where no such binding exists, the Workers runtime's
 * own egress reaches no private address. The operator's DRAIN_ALLOW_HOSTS (a test
 * platform's local receiver) go the ordinary way.
 */
export function tenantFetch(env: TenantNetworkEnv, url: string, init: RequestInit): Promise<Response> {
  const { hostname, port, protocol } = new URL(url);
  if (env.PUBLIC_NETWORK && !allowedDrainHost(env, hostname, port || (protocol === "https:" ? "443" : "80"))) return env.PUBLIC_NETWORK.fetch(url, init);
  return fetch(url, init);
}

/**
 * A TCP connection to a tenant-named `hostname:port` (syslog drains), by the same rule as
 * tenantFetch; `connect` is the runtime's own (`cloudflare:sockets`, which only Worker code imports).
 */
export function tenantConnect(
  env: TenantNetworkEnv,
  address: { hostname: string; port: number },
  options: SocketOptions,
  connect: (address: { hostname: string; port: number }, options: SocketOptions) => Socket,
): Socket {
  if (env.PUBLIC_NETWORK && !allowedDrainHost(env, address.hostname, String(address.port))) return env.PUBLIC_NETWORK.connect(address, options);
  return connect(address, options);
}
