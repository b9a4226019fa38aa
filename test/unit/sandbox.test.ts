import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createCgroup, detectCgroups, limitFiles, sharesForWeight, sweepCgroups } from "../../src/agent/sandbox/cgroups.ts";
import { APPLY_ENV, envScript, parentDirs, sandboxArgv } from "../../src/agent/sandbox/launch.ts";
import { attachedNetworks, BLOCKED_DESTINATIONS, firewallRules, networkPlan, resolversFrom } from "../../src/agent/sandbox/network.ts";

const roots: string[] = [];
afterEach(() => roots.splice(0).forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A fake /sys/fs/cgroup: v1 with one directory per controller, or v2 with the listed controllers. */
function fakeCgroups(version: 1 | 2, controllers = "cpuset cpu io memory hugetlb pids rdma"): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "dynoplane-cgroupfs-"));
  roots.push(root);
  if (version === 1) {
    for (const c of ["memory", "pids", "cpu", "cpuacct", "unified"]) {
      mkdirSync(path.join(root, c));
      writeFileSync(path.join(root, c, "cgroup.procs"), "");
    }
  } else {
    writeFileSync(path.join(root, "cgroup.controllers"), `${controllers}\n`);
    writeFileSync(path.join(root, "cgroup.subtree_control"), "");
  }
  return root;
}

const LIMITS = { memoryMb: 512, pids: 256, cpuWeight: 200 };

describe("sandbox cgroups", () => {
  it("detects v1 (a hierarchy per controller) and v2 (one hierarchy with cgroup.controllers)", () => {
    const v1 = fakeCgroups(1);
    expect(detectCgroups(v1)).toEqual({ version: 1, root: v1, memory: path.join(v1, "memory"), pids: path.join(v1, "pids"), cpu: path.join(v1, "cpu") });
    const v2 = fakeCgroups(2);
    expect(detectCgroups(v2)).toEqual({ version: 2, root: v2 });
  });

  it("finds no usable layout without the memory or pids controller", () => {
    expect(detectCgroups(fakeCgroups(2, "cpuset cpu io"))).toBeNull();
    expect(detectCgroups(fakeCgroups(2, "memory cpu"))).toBeNull();
    expect(detectCgroups(path.join(os.tmpdir(), "no-such-cgroupfs"))).toBeNull();
  });

  it.each([
    [100, 1024],
    [200, 2048],
    [1, 10],
    [0, 2],
  ])("maps CPU weight %i to %i v1 shares", (weight, shares) => expect(sharesForWeight(weight)).toBe(shares));

  it("writes a v1 sandbox's limits into each controller's hierarchy, the hard memory limit at twice the quota", () => {
    const root = fakeCgroups(1);
    const cg = createCgroup(detectCgroups(root)!, "dynoplane-test", "web-1", LIMITS);
    const read = (c: string, f: string) => readFileSync(path.join(root, c, "dynoplane-test", "web-1", f), "utf8");
    expect(read("memory", "memory.limit_in_bytes")).toBe(String(1024 * 1024 * 1024));
    expect(read("memory", "memory.memsw.limit_in_bytes")).toBe(String(1024 * 1024 * 1024));
    expect(read("pids", "pids.max")).toBe("256");
    expect(read("cpu", "cpu.shares")).toBe("2048");
    // Joining means writing to every hierarchy; the pids one (last) lists the members.
    expect(cg.procsFiles).toEqual(["memory", "cpu", "pids"].map((c) => path.join(root, c, "dynoplane-test", "web-1", "cgroup.procs")));
    writeFileSync(path.join(root, "pids", "dynoplane-test", "web-1", "cgroup.procs"), "12\n34\n");
    expect(cg.pids()).toEqual([12, 34]);
    writeFileSync(path.join(root, "memory", "dynoplane-test", "web-1", "memory.usage_in_bytes"), "4096\n");
    expect(cg.usageBytes()).toBe(4096);
    writeFileSync(path.join(root, "memory", "dynoplane-test", "web-1", "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    expect(cg.oomKilled()).toBe(true);
  });

  it("writes a v2 sandbox's limits into one directory, after handing the controllers down", () => {
    const root = fakeCgroups(2);
    const cg = createCgroup(detectCgroups(root)!, "dynoplane-test", "web-1", LIMITS);
    const dir = path.join(root, "dynoplane-test", "web-1");
    expect(readFileSync(path.join(root, "cgroup.subtree_control"), "utf8")).toBe("+memory +pids +cpu");
    expect(readFileSync(path.join(dir, "memory.max"), "utf8")).toBe(String(1024 * 1024 * 1024));
    expect(readFileSync(path.join(dir, "memory.swap.max"), "utf8")).toBe("0");
    expect(readFileSync(path.join(dir, "pids.max"), "utf8")).toBe("256");
    expect(readFileSync(path.join(dir, "cpu.weight"), "utf8")).toBe("200");
    expect(cg.procsFiles).toEqual([path.join(dir, "cgroup.procs")]);
    writeFileSync(path.join(dir, "memory.current"), "8192\n");
    expect(cg.usageBytes()).toBe(8192);
    writeFileSync(path.join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n");
    expect(cg.oomKilled()).toBe(false);
    writeFileSync(path.join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n");
    expect(cg.oomKilled()).toBe(true);
  });

  it("plans the same files it writes, for either layout", () => {
    const v2 = detectCgroups(fakeCgroups(2))!;
    expect(limitFiles(v2, "g", "n", LIMITS)).toEqual([
      {
        dir: path.join(v2.root, "g", "n"),
        files: [
          ["memory.max", "1073741824"],
          ["memory.swap.max", "0"],
          ["pids.max", "256"],
          ["cpu.weight", "200"],
        ],
      },
    ]);
  });

  it("sweeps empty sandbox cgroups and reports the ones still holding processes", () => {
    const root = fakeCgroups(2);
    const layout = detectCgroups(root)!;
    createCgroup(layout, "dynoplane-test", "gone", LIMITS);
    createCgroup(layout, "dynoplane-test", "busy", LIMITS);
    writeFileSync(path.join(root, "dynoplane-test", "busy", "cgroup.procs"), "99\n");
    // A plain directory with files cannot be rmdir'd as a cgroupfs one can; only the report is checked here.
    expect(sweepCgroups(layout, "dynoplane-test")).toEqual([path.join(root, "dynoplane-test", "busy")]);
  });
});

describe("sandbox launch", () => {
  it("quotes the environment so that the tenant's shell expands nothing in it", () => {
    const env = { PLAIN: "x", QUOTE: "it's", EXPAND: "$HOME `id` $(id)", NEWLINE: "a\nb", "BAD-NAME": "skipped", "1ST": "skipped", NUL: "a\0b" };
    const script = envScript(env);
    expect(script).not.toContain("BAD-NAME");
    expect(script).not.toContain("1ST");
    expect(script).not.toContain("NUL=");
    const out = execFileSync("/bin/sh", ["-c", `eval "$(cat)"; printf '%s|' "$PLAIN" "$QUOTE" "$EXPAND" "$NEWLINE"`], {
      input: script,
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    });
    expect(out).toBe("x|it's|$HOME `id` $(id)|a\nb|");
  });

  it("creates every parent of a mounted path as 0755, shallowest first", () => {
    expect(parentDirs(["/work/main/node_modules", "/work/main/src/agent/buildpacks", "/app"])).toEqual([
      "--perms",
      "0755",
      "--dir",
      "/work",
      "--perms",
      "0755",
      "--dir",
      "/work/main",
      "--perms",
      "0755",
      "--dir",
      "/work/main/src",
      "--perms",
      "0755",
      "--dir",
      "/work/main/src/agent",
    ]);
  });

  it("runs root steps with fixed paths and drops to the tenant before its shell reads the environment", () => {
    const argv = sandboxArgv(
      {
        cgroupProcs: ["/cg/memory/x/cgroup.procs", "/cg/pids/x/cgroup.procs"],
        netns: "/run/netns/dp-1",
        uid: 1000000123,
        gid: 1000000123,
        readOnly: [],
        readWrite: [["/host/app", "/app"]],
        chdir: "/app",
        hostname: "web.1",
        shmMb: 64,
        script: "exec node server.js",
        name: "web.1",
      },
      ["--ro-bind", "/usr", "/usr"],
    );
    expect(argv.slice(0, 6)).toEqual(["/bin/sh", "-c", expect.stringContaining('exec "$@"'), "join", "2", "/cg/memory/x/cgroup.procs"]);
    const at = (s: string) => argv.indexOf(s);
    // Order of privilege: cgroups, network namespace, bwrap's namespaces, then setpriv, then the tenant.
    expect(at("/usr/bin/nsenter")).toBeLessThan(at("/usr/bin/bwrap"));
    expect(at("/usr/bin/bwrap")).toBeLessThan(at("/usr/bin/setpriv"));
    expect(argv.slice(at("/usr/bin/setpriv"), at("/usr/bin/setpriv") + 8)).toEqual([
      "/usr/bin/setpriv",
      "--reuid=1000000123",
      "--regid=1000000123",
      "--clear-groups",
      "--no-new-privs",
      "--inh-caps=-all",
      "--bounding-set=-all",
      "--",
    ]);
    expect(argv).toContain("--unshare-pid");
    expect(argv).toContain("--die-with-parent");
    expect(argv.slice(-4)).toEqual(["/bin/sh", "-c", `${APPLY_ENV}exec node server.js`, "web.1"]);
    // Nothing of the tenant's environment is in the arguments any root process sees.
    expect(argv.join(" ")).not.toMatch(/PATH=|LD_PRELOAD/);
  });
});

describe("sandbox network", () => {
  const plan = networkPlan("abcd1234", 7);

  it("names an agent's bridge, table and /24 after its tag", () => {
    expect(plan).toEqual({
      tag: "abcd1234",
      bridge: "dpbabcd1234",
      table: "dynoplane_abcd1234",
      subnet: 7,
      prefix: "10.213.7",
      gateway: "10.213.7.1",
      bridgeMac: "02:64:ab:cd:12:34",
    });
    expect(plan.bridge.length).toBeLessThanOrEqual(15); // IFNAMSIZ
  });

  it("keeps dynos off the host and private networks but lets them out, and NATs them", () => {
    const rules = firewallRules(plan, ["10.255.255.53"], [{ address: "10.213.7.1", port: 5432 }]);
    expect(rules).toContain('iifname "dpbabcd1234" ct state established,related accept');
    expect(rules).toMatch(/iifname "dpbabcd1234" ip daddr 10\.213\.7\.1 tcp dport 5432 accept\n\s+iifname "dpbabcd1234" drop/);
    expect(rules).toContain('oifname "dpbabcd1234" drop');
    expect(rules).toContain(`ip daddr { ${BLOCKED_DESTINATIONS.join(", ")} } drop`);
    expect(rules.indexOf("10.255.255.53 udp dport 53 accept")).toBeLessThan(rules.indexOf("ip daddr { "));
    expect(rules).toContain('ip saddr 10.213.7.0/24 oifname != "dpbabcd1234" masquerade');
  });

  it("drops the networks the host is attached to, besides the private ranges, computed from its interfaces", () => {
    const iface = (address: string, cidr: string, internal = false) => ({ address, cidr, netmask: "", family: "IPv4" as const, mac: "", internal });
    const attached = attachedNetworks({
      lo: [iface("127.0.0.1", "127.0.0.1/8", true)],
      eth0: [iface("203.0.113.57", "203.0.113.57/24"), { ...iface("2001:db8::5", "2001:db8::5/64"), family: "IPv6" as const, scopeid: 0 }],
      eth1: [iface("198.51.100.9", "198.51.100.9/28"), iface("198.51.100.20", "198.51.100.20/24")],
      dpbabcd1234: [iface("10.213.7.1", "10.213.7.1/24")],
      office: [iface("192.168.1.20", "192.168.1.20/24")],
    });
    // The /28 lies inside the /24 and the office network inside 192.168/16: one drop covers each.
    expect(attached.sort()).toEqual(["198.51.100.0/24", "203.0.113.0/24"]);
    const rules = firewallRules(plan, ["203.0.113.53"], [], attached);
    expect(rules).toContain(`ip daddr { ${[...BLOCKED_DESTINATIONS, ...attached].join(", ")} } drop`);
    expect(rules.indexOf("203.0.113.53 udp dport 53 accept")).toBeLessThan(rules.indexOf("ip daddr { "));
  });

  it("accepts the resolvers a dyno can reach through the host, not loopback ones", () => {
    expect(resolversFrom("# comment\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver ::1\nsearch example\n")).toEqual(["10.255.255.53"]);
  });
});
