import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { SandboxNetwork, servicesAddress } from "../../src/agent/sandbox/network.ts";
import { tempDir } from "./support.ts";

// Sandboxes come and go all day on an agent's bridge (a transfer, a one-off dyno, a build),
// while a web dyno lives for hours beside them: it must keep its way out through the gateway,
// and each new sandbox must get a network that works at once.

const exec = promisify(execFile);

describe.skipIf(sandboxProblems().length > 0)("an agent's sandbox network", { timeout: 120_000 }, () => {
  const address = servicesAddress();
  let server: net.Server;
  let port: number;
  let network: SandboxNetwork;
  let addedAddress = false;

  beforeAll(async () => {
    // The platform's services address, on the host's loopback as the local platform puts it.
    addedAddress = await exec("ip", ["addr", "add", `${address}/32`, "dev", "lo"]).then(
      () => true,
      () => false,
    );
    server = net.createServer((c) => c.end("hello from the host\n"));
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    port = (server.address() as net.AddressInfo).port;
    network = await SandboxNetwork.create(tempDir("sandbox-network-"), { allow: [{ address, port }] });
  });

  afterAll(async () => {
    await network?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    // Given back only when nothing else (a platform started meanwhile) listens on it.
    const listened = await exec("ss", ["-Htln", "src", address]).then(
      ({ stdout }) => stdout.trim() !== "",
      () => true,
    );
    if (addedAddress && !listened) await exec("ip", ["addr", "del", `${address}/32`, "dev", "lo"]).catch(() => {});
  });

  /** What a process in the namespace reads from the host's allowed port, given 3 s. */
  const reach = async (netns: string): Promise<string> => {
    const script = `exec 3<>/dev/tcp/${address}/${port} && cat <&3`;
    const { stdout } = await exec("ip", ["netns", "exec", netns, "timeout", "3", "bash", "-c", script]).catch((err: { stdout?: string }) => ({
      stdout: `unreachable: ${err.stdout ?? ""}`,
    }));
    return stdout.trim();
  };
  const bridgeMac = () => readFileSync(`/sys/class/net/${network.plan.bridge}/address`, "utf8").trim();

  it("keeps the bridge's address while other sandboxes come and go, so a long-lived one keeps reaching the host", async () => {
    const dyno = await network.acquire();
    try {
      expect(await reach(dyno.name)).toBe("hello from the host");
      const mac = bridgeMac();
      expect(mac).toBe(network.plan.bridgeMac);
      for (let i = 0; i < 8; i++) {
        const other = await network.acquire();
        expect(await reach(other.name)).toBe("hello from the host");
        await network.release(other);
      }
      // The dyno's neighbour entry for the gateway still names the bridge's address.
      expect(bridgeMac()).toBe(mac);
      expect(await reach(dyno.name)).toBe("hello from the host");
    } finally {
      await network.release(dyno);
    }
  });

  it("frees a released sandbox's veth at once, and gives its address out again only after the others", async () => {
    const first = await network.acquire();
    const veth = `dpv${network.plan.subnet}-${first.address.split(".")[3]}`;
    const linkExists = () =>
      exec("ip", ["link", "show", "dev", veth]).then(
        () => true,
        () => false,
      );
    expect(await linkExists()).toBe(true);
    await network.release(first);
    // Its veth pair is gone (the kernel tears a deleted namespace down later; its devices must not wait for that).
    expect(await linkExists()).toBe(false);
    const next = await Promise.all([network.acquire(), network.acquire(), network.acquire()]);
    try {
      expect(next.map((n) => n.address)).not.toContain(first.address);
      for (const n of next) expect(await reach(n.name)).toBe("hello from the host");
    } finally {
      for (const n of next) await network.release(n);
    }
  });

  it("leaves no veth behind when it closes, its sandboxes' and its spares' alike", async () => {
    const other = await SandboxNetwork.create(tempDir("sandbox-network-"), { allow: [{ address, port }] });
    const subnetLinks = async () => {
      const { stdout } = await exec("ip", ["-o", "link", "show"]);
      return [...stdout.matchAll(/^\d+: (dpv(\d+)-\d+)[@:]/gm)].filter((m) => Number(m[2]) === other.plan.subnet).map((m) => m[1]);
    };
    await Promise.all([other.acquire(), other.acquire(), other.acquire()]);
    expect((await subnetLinks()).length).toBeGreaterThanOrEqual(3);
    await other.close();
    expect(await subnetLinks()).toEqual([]);
  });
});
