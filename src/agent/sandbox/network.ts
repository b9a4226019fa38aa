import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ipaddr from "ipaddr.js";
import { run } from "./run.ts";

/** The range every agent's dyno subnets come from; each agent takes one /24 of it. */
export const DEFAULT_DYNO_SUPERNET = "10.213.0.0/16";

/** Namespaces kept ready for the next sandboxes. */
const SPARE_NAMESPACES = 2;

/** Where agents on one machine record which /24 each one holds (pid and names). */
export const LEASE_DIR = "/run/dynoplane/net";

/** An agent's tag, one per work dir: in the names of its cgroup group, bridge, namespaces and subnet lease. */
export const agentTag = (workDir: string): string => createHash("sha256").update(path.resolve(workDir)).digest("hex").slice(0, 8);

/**
 * Destinations a dyno may not reach through the host: loopback, link-local (cloud metadata),
 * private and shared ranges (the operator's own network, other agents' dynos), multicast.
 * The host's resolvers are let through on port 53 before this applies.
 */
export const BLOCKED_DESTINATIONS = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "224.0.0.0/3",
];

/**
 * The address of the platform's own services dynos may reach (an add-on database server),
 * on the host's loopback interface: in the supernet (subnet 255, which no agent takes), so a
 * dyno routes to it through its agent's bridge, where only the allowed ports let it in.
 */
export function servicesAddress(supernet = DEFAULT_DYNO_SUPERNET): string {
  const [a, b] = supernet.split(".");
  return `${a}.${b}.255.254`;
}

/** One agent's share of the machine's network: a bridge, a /24 and an nftables table. */
export interface NetworkPlan {
  tag: string;
  bridge: string;
  table: string;
  /** The third octet of this agent's /24 in the supernet. */
  subnet: number;
  prefix: string;
  gateway: string;
  /**
   * The bridge's own MAC address, set once: a bridge left to itself takes its lowest port's,
   * which changes as sandboxes come and go, and every dyno that knew the gateway by the old
   * one loses its way out until its neighbour entry goes stale.
   */
  bridgeMac: string;
}

/** Names and addresses for the agent whose work dir hashes to `tag`, on /24 number `subnet`. Pure. */
export function networkPlan(tag: string, subnet: number, supernet = DEFAULT_DYNO_SUPERNET): NetworkPlan {
  const [a, b] = supernet.split(".");
  const prefix = `${a}.${b}.${subnet}`;
  // Locally administered and unicast (02:…), then the tag's four bytes.
  const bridgeMac = `02:64:${tag.match(/../g)!.join(":")}`;
  return { tag, bridge: `dpb${tag}`, table: `dynoplane_${tag}`, subnet, prefix, gateway: `${prefix}.1`, bridgeMac };
}

/**
 * The IPv4 networks this host is directly attached to (its interfaces' prefixes, loopback
 * and the dyno supernet's bridges aside): its upstream subnet is neither private nor the
 * internet, and a dyno must reach no neighbour there, the gateway itself included (traffic
 * routed through it to the internet is addressed elsewhere). Pure.
 */
export function attachedNetworks(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>, supernet = DEFAULT_DYNO_SUPERNET): string[] {
  const dynoRange = ipaddr.parseCIDR(supernet);
  const out = new Set<string>();
  for (const list of Object.values(interfaces)) {
    for (const i of list ?? []) {
      if (i.internal || i.family !== "IPv4" || !i.cidr) continue;
      const address = ipaddr.IPv4.parse(i.address);
      if (address.match(dynoRange as [ipaddr.IPv4, number])) continue;
      out.add(`${ipaddr.IPv4.networkAddressFromCIDR(i.cidr).toString()}/${i.cidr.split("/")[1]}`);
    }
  }
  // nftables refuses overlapping intervals in one set: a network inside a blocked range, or
  // inside another attached one, is blocked already.
  const wider = [...BLOCKED_DESTINATIONS, ...out].map((c) => ipaddr.IPv4.parseCIDR(c));
  return [...out].filter((c) => {
    const [net, bits] = ipaddr.IPv4.parseCIDR(c);
    return !wider.some(([w, wbits]) => wbits < bits && net.match(w, wbits));
  });
}

/** The nftables ruleset that fences an agent's dynos in. Pure, so that it can be read in a test. */
export function firewallRules(plan: NetworkPlan, resolvers: string[], allow: { address: string; port: number }[] = [], attached: string[] = []): string {
  const br = JSON.stringify(plan.bridge);
  const lines = [
    `table inet ${plan.table} {`,
    // Dynos reach nothing on the host itself (its loopback services are not even routable;
    // this covers every address the host has), except what the platform opens on purpose.
    "  chain input {",
    "    type filter hook input priority -10; policy accept;",
    `    iifname ${br} ct state established,related accept`,
    ...allow.map((a) => `    iifname ${br} ip daddr ${a.address} tcp dport ${a.port} accept`),
    `    iifname ${br} drop`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority -10; policy accept;",
    `    oifname ${br} ct state established,related accept`,
    `    oifname ${br} drop`,
    `    iifname ${br} ct state established,related accept`,
    ...resolvers.flatMap((r) => [`    iifname ${br} ip daddr ${r} udp dport 53 accept`, `    iifname ${br} ip daddr ${r} tcp dport 53 accept`]),
    `    iifname ${br} ip daddr { ${[...BLOCKED_DESTINATIONS, ...attached].join(", ")} } drop`,
    `    iifname ${br} accept`,
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority 100; policy accept;",
    `    ip saddr ${plan.prefix}.0/24 oifname != ${br} masquerade`,
    "  }",
    "}",
  ];
  return lines.join("\n") + "\n";
}

/** The IPv4 nameservers of resolv.conf that a dyno can use through the host (not loopback ones). */
export function resolversFrom(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split("\n")) {
    const m = /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(line);
    if (m && !m[1]!.startsWith("127.")) out.push(m[1]!);
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One dyno's network: a namespace joined to the agent's bridge by a veth pair. */
export interface DynoNetwork {
  /** The namespace's path, for `nsenter --net=`. */
  netns: string;
  name: string;
  address: string;
}

/**
 * The network side of an agent's sandboxes. Each sandbox gets a network namespace with one
 * veth on the agent's bridge (ports isolated from each other), an address in the agent's /24,
 * and a default route through the host, which NATs its traffic out. nftables keeps dynos
 * off the host and off private networks; bridge port isolation keeps them off each other.
 */
export class SandboxNetwork {
  private readonly used = new Set<number>();
  private spare: Promise<DynoNetwork>[] = [];
  private closed = false;
  /** The host number given out last (see `nextHost`). */
  private last = 1;
  /** The namespaces of an earlier agent's sandboxes this one kept (see `keep`), by name. */
  readonly kept = new Set<string>();

  private constructor(
    readonly plan: NetworkPlan,
    private readonly lease: string,
  ) {}

  /**
   * Claims a /24, creates the bridge and the firewall. Leftovers of an earlier run are removed
   * first, except what `keep` names: the namespaces of an earlier agent's sandboxes that this
   * one adopts. Those keep their /24, bridge and addresses (the earlier agent's lease is taken
   * over); `kept` says which could be.
   */
  static async create(
    workDir: string,
    o: { supernet?: string; allow?: { address: string; port: number }[]; keep?: { netns: string; address: string }[] } = {},
  ): Promise<SandboxNetwork> {
    const tag = agentTag(workDir);
    await fs.mkdir(LEASE_DIR, { recursive: true, mode: 0o700 });
    if (o.keep?.length) {
      const taken = await SandboxNetwork.takeOver(tag, o.keep, o.allow ?? [], o.supernet);
      if (taken) return taken;
    }
    const start = parseInt(tag.slice(0, 4), 16) % 250;
    for (let i = 0; i < 250; i++) {
      const subnet = ((start + i) % 250) + 2;
      const lease = path.join(LEASE_DIR, String(subnet));
      const plan = networkPlan(tag, subnet, o.supernet);
      if (!(await claim(lease, plan))) continue;
      const net = new SandboxNetwork(plan, lease);
      try {
        await net.setUp(o.allow ?? []);
        net.refill();
      } catch (err) {
        await net.close().catch(() => {});
        throw err;
      }
      return net;
    }
    throw new Error("every dyno subnet on this machine is taken by another agent");
  }

  /**
   * Takes over the /24 an earlier agent with this work dir leased, when it is gone and its
   * bridge is still up: its namespaces in `keep` stay, the others go, and the firewall is
   * replaced in one transaction (this release's rules; no moment without any).
   */
  private static async takeOver(
    tag: string,
    keep: { netns: string; address: string }[],
    allow: { address: string; port: number }[],
    supernet?: string,
  ): Promise<SandboxNetwork | null> {
    for (const file of await fs.readdir(LEASE_DIR).catch(() => [] as string[])) {
      if (!/^\d+$/.test(file)) continue;
      const lease = path.join(LEASE_DIR, file);
      const holder = await fs
        .readFile(lease, "utf8")
        .then((t) => JSON.parse(t) as { pid: number; tag: string })
        .catch(() => null);
      if (holder?.tag !== tag) continue;
      if (holder.pid !== process.pid && alive(holder.pid)) throw new Error(`another agent (pid ${holder.pid}) is running with this work dir`);
      const plan = networkPlan(tag, Number(file), supernet);
      const bridgeUp = await run("ip", ["link", "show", plan.bridge]).then(
        () => true,
        () => false,
      );
      if (!bridgeUp) return null;
      // An earlier release's bridge may have followed its ports' addresses; from now on it
      // keeps its own, announced (gratuitous ARP) so that the adopted dynos learn it at once.
      await fs.writeFile(`/proc/sys/net/ipv4/conf/${plan.bridge}/arp_notify`, "1");
      await run("ip", ["link", "set", plan.bridge, "address", plan.bridgeMac]);
      await fs.writeFile(lease, JSON.stringify({ pid: process.pid, tag }), { mode: 0o600 });
      const net = new SandboxNetwork(plan, lease);
      for (const k of keep) {
        const host = Number(k.address.split(".")[3]);
        if (k.netns === `dp${tag}-${host}` && k.address === `${plan.prefix}.${host}`) {
          net.used.add(host);
          net.kept.add(k.netns);
        }
      }
      // New addresses continue after the adopted ones.
      net.last = Math.max(1, ...net.used);
      const names = await fs.readdir("/run/netns").catch(() => [] as string[]);
      await Promise.all(
        names
          .filter((n) => n.startsWith(`dp${tag}-`) && !net.kept.has(n))
          .map(async (n) => {
            await run("ip", ["link", "del", net.veth(Number(n.slice(`dp${tag}-`.length)))]).catch(() => {});
            await run("ip", ["netns", "del", n]).catch(() => {});
          }),
      );
      await net.applyFirewall(allow);
      net.refill();
      return net;
    }
    return null;
  }

  private async setUp(allow: { address: string; port: number }[]): Promise<void> {
    const { plan } = this;
    await removeNetwork(plan);
    await run("ip", ["-batch", "-"], {
      stdin:
        [
          `link add ${plan.bridge} type bridge`,
          `link set ${plan.bridge} address ${plan.bridgeMac}`,
          `addr add ${plan.gateway}/24 dev ${plan.bridge}`,
          `link set ${plan.bridge} up`,
        ].join("\n") + "\n",
    });
    await this.applyFirewall(allow);
  }

  /**
   * Forwarding on, and this release's firewall in place of whatever table of this agent's
   * there was, in one nftables transaction (no moment without rules).
   */
  private async applyFirewall(allow: { address: string; port: number }[]): Promise<void> {
    const { plan } = this;
    await fs.writeFile("/proc/sys/net/ipv4/ip_forward", "1");
    const resolvers = resolversFrom(await fs.readFile("/etc/resolv.conf", "utf8").catch(() => ""));
    const attached = attachedNetworks(os.networkInterfaces());
    await run("nft", ["-f", "-"], {
      stdin: `table inet ${plan.table} {}\ndelete table inet ${plan.table}\n${firewallRules(plan, resolvers, allow, attached)}`,
    });
  }

  /**
   * A fresh namespace for one sandbox, with its address; `release` deletes it. Namespaces are
   * made ahead (a few spare, never used before), so a dyno's start does not wait on `ip`.
   */
  async acquire(): Promise<DynoNetwork> {
    const ready = this.spare.shift() ?? this.create();
    this.refill();
    return ready;
  }

  private refill(): void {
    if (this.closed) return;
    while (this.spare.length < SPARE_NAMESPACES && this.used.size < 250) {
      const made = this.create();
      this.spare.push(made);
      // A spare that failed is dropped; an acquire that took it already sees the error.
      made.catch(() => (this.spare = this.spare.filter((p) => p !== made)));
    }
  }

  /**
   * The next free host number after the last one given out, round the /24: an address is
   * used again as late as can be, long after anything of its last sandbox (a neighbour
   * entry, a connection's state) could linger.
   */
  private nextHost(): number {
    for (let i = 1; i <= 253; i++) {
      const host = ((this.last - 2 + i) % 253) + 2;
      if (!this.used.has(host)) return (this.last = host);
    }
    throw new Error("this host has no dyno addresses left (253 sandboxes at once)");
  }

  /** The host side of a sandbox's veth pair. Unique on the machine: the /24 is this agent's alone (its lease). */
  private veth(host: number): string {
    return `dpv${this.plan.subnet}-${host}`;
  }

  private async create(): Promise<DynoNetwork> {
    const host = this.nextHost();
    this.used.add(host);
    const { plan } = this;
    const name = `dp${plan.tag}-${host}`;
    const veth = this.veth(host);
    const address = `${plan.prefix}.${host}`;
    // A released address answers "prohibited" until it is used again (see `release`).
    await run("ip", ["route", "del", "prohibit", `${address}/32`]).catch(() => {});
    try {
      await run("ip", ["-batch", "-"], {
        stdin:
          [
            `netns add ${name}`,
            `link add ${veth} type veth peer name eth0 netns ${name}`,
            `link set ${veth} master ${plan.bridge}`,
            `link set dev ${veth} type bridge_slave isolated on`,
            `link set ${veth} up`,
          ].join("\n") + "\n",
      });
      await run("ip", ["-n", name, "-batch", "-"], {
        stdin: [`addr add ${address}/24 dev eth0`, "link set lo up", "link set eth0 up", `route add default via ${plan.gateway}`].join("\n") + "\n",
      });
    } catch (err) {
      await run("ip", ["netns", "del", name]).catch(() => {});
      this.used.delete(host);
      throw err;
    }
    return { netns: `/run/netns/${name}`, name, address };
  }

  /**
   * Deletes a sandbox's veth pair, then its namespace. The pair goes first because it goes
   * at once: a namespace deleted with `ip netns del` is torn down by the kernel later, its
   * devices with it, and until then the veth's name is taken. Its address then gets a
   * `prohibit` route: a connection the agent starts to it from a stale routing decision
   * fails at once instead of waiting on a neighbour entry that points nowhere.
   */
  async release(net: DynoNetwork): Promise<void> {
    const host = Number(net.address.split(".")[3]);
    await run("ip", ["link", "del", this.veth(host)]).catch(() => {});
    await run("ip", ["netns", "del", net.name]).catch(() => {});
    await run("ip", ["route", "replace", "prohibit", `${net.address}/32`]).catch(() => {});
    await run("ip", ["neigh", "flush", "to", net.address]).catch(() => {});
    this.used.delete(host);
  }

  /** Removes every namespace, the bridge, the firewall and the lease. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.spare.splice(0));
    await removeNetwork(this.plan);
    await fs.rm(this.lease, { force: true });
  }
}

/** Takes the lease file for a /24 unless a live agent holds it; a dead agent's network is removed. */
async function claim(lease: string, plan: NetworkPlan): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fs.writeFile(lease, JSON.stringify({ pid: process.pid, tag: plan.tag }), { flag: "wx", mode: 0o600 });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let holder: { pid: number; tag: string } | null = null;
    try {
      holder = JSON.parse(await fs.readFile(lease, "utf8")) as { pid: number; tag: string };
    } catch {
      // Half-written by an agent that is starting: leave it to that one.
      return false;
    }
    if (holder.tag !== plan.tag && alive(holder.pid)) return false;
    if (holder.tag === plan.tag && holder.pid !== process.pid && alive(holder.pid))
      throw new Error(`another agent (pid ${holder.pid}) is running with this work dir`);
    await removeNetwork(networkPlan(holder.tag, plan.subnet)).catch(() => {});
    await fs.rm(lease, { force: true });
  }
  return false;
}

/** Deletes an agent's veth pairs, namespaces, bridge and table, whichever of them exist. */
async function removeNetwork(plan: NetworkPlan): Promise<void> {
  // The veth pairs first, as `release` does: a namespace's own go only when the kernel tears it down, later.
  const links = await run("ip", ["-o", "link", "show"]).catch(() => "");
  const veths = [...links.matchAll(/^\d+: (dpv(\d+)-\d+)[@:]/gm)].filter((m) => Number(m[2]) === plan.subnet).map((m) => m[1]!);
  await Promise.all(veths.map((v) => run("ip", ["link", "del", v]).catch(() => {})));
  const names = await fs.readdir("/run/netns").catch(() => [] as string[]);
  await Promise.all(names.filter((n) => n.startsWith(`dp${plan.tag}-`)).map((n) => run("ip", ["netns", "del", n]).catch(() => {})));
  await run("ip", ["link", "del", plan.bridge]).catch(() => {});
  // The prohibit routes of released addresses, and anything else in this agent's /24.
  await run("ip", ["route", "flush", "root", `${plan.prefix}.0/24`]).catch(() => {});
  await run("nft", ["delete", "table", "inet", plan.table]).catch(() => {});
}
