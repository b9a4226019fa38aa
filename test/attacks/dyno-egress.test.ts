import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { CONNECT, at, desiredDyno, sh, supervisorFixture, waitFor } from "../agent/support.ts";

const fixture = supervisorFixture();

// A network the host is directly attached to, made by the test: a veth pair whose far end is
// in a network namespace of the test's own, on addresses that are neither private nor
// anyone's on the internet (TEST-NET-2), with a listener there. It stands for the host's
// upstream subnet and its gateway, which a test may not send traffic to.
const NS = "attack-egress";
const HOST_END = "atkeh0";
const FAR_END = "atken0";
const NEIGHBOUR = "198.51.100.1";
const PORT = 8081;

describe.skipIf(sandboxProblems().length > 0)("a dyno against the host's attached networks", () => {
  let neighbour: ChildProcess | undefined;
  const removeNamespace = () => {
    try {
      execFileSync("ip", ["netns", "del", NS], { stdio: "ignore" });
    } catch {
      // None there.
    }
  };
  beforeAll(removeNamespace);
  afterAll(() => {
    neighbour?.kill();
    removeNamespace();
  });

  it("reaches no neighbour on a network the host is attached to, though the host itself does", async () => {
    const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "pipe" });
    ip("netns", "add", NS);
    ip("link", "add", HOST_END, "type", "veth", "peer", "name", FAR_END);
    ip("link", "set", FAR_END, "netns", NS);
    ip("addr", "add", "198.51.100.2/24", "dev", HOST_END);
    ip("link", "set", HOST_END, "up");
    ip("-n", NS, "addr", "add", `${NEIGHBOUR}/24`, "dev", FAR_END);
    ip("-n", NS, "link", "set", FAR_END, "up");
    ip("-n", NS, "link", "set", "lo", "up");
    neighbour = spawn(
      "ip",
      [
        "netns",
        "exec",
        NS,
        process.execPath,
        "-e",
        `require("net").createServer((s) => s.on("error", () => {}).end("neighbour\\n")).listen(${PORT}, "${NEIGHBOUR}")`,
      ],
      {
        stdio: "ignore",
      },
    );
    // The neighbour answers the host: what the dyno must not reach is there.
    await waitFor("the neighbour to listen", () => {
      try {
        return (
          execFileSync(process.execPath, ["-e", CONNECT.slice("node -e '".length, -1), NEIGHBOUR, String(PORT)], { encoding: "utf8" }).trim() === "connected"
        );
      } catch {
        return false;
      }
    });
    // The agent computes the attached networks from the host's interfaces as it starts.
    const { sup } = await fixture.start();
    const dyno = desiredDyno();
    sup.ensure(dyno);
    const info = await waitFor(`${dyno.name} up`, () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000);
    // The method works: the dyno reaches its own server.
    expect((await sh(at(info), `${CONNECT} 127.0.0.1 ${info.port}`)).stdout.trim()).toBe("connected");
    // Defence: attachedNetworks in the agent's nftables rules.
    expect((await sh(at(info), `${CONNECT} ${NEIGHBOUR} ${PORT}`)).stdout.trim()).not.toBe("connected");
  });
});
