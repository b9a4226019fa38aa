import { execFileSync, spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import type { Supervisor } from "../../src/agent/supervisor.ts";
import type { DesiredDyno } from "../../src/protocol/host.ts";
import { CONNECT, at, buildSlug, desiredDyno, get, sh, supervisorFixture, waitFor } from "../agent/support.ts";

// Attacks from inside a dyno: loopback and bridge services, other dynos, /proc, PATH and
// LD_PRELOAD config vars against root's processes, detached processes, disk, fork bombs.
// Defences: network namespaces and nftables (sandbox/network.ts), PID and mount namespaces
// (bubblewrap, sandbox/launch.ts), config vars applied only after setpriv drops to the app's
// uid, and cgroups (sandbox/cgroups.ts), each named in its test.

// A tenant's view from inside its dyno: every attack below must fail to get out.
const fixture = supervisorFixture();
const up = (sup: Supervisor, dyno: DesiredDyno) => waitFor(`${dyno.name} up`, () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000);

/** Host processes whose command line carries `marker`. */
const hostProcesses = (marker: string) =>
  execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(marker) && !l.includes("ps -eo"));

describe.skipIf(sandboxProblems().length > 0)("dyno sandbox, against a hostile tenant", () => {
  const servers: net.Server[] = [];
  const listen = (host: string) =>
    new Promise<number>((resolve) => {
      const server = net.createServer((s) => s.end("host service\n"));
      servers.push(server);
      server.listen(0, host, () => resolve((server.address() as net.AddressInfo).port));
    });
  afterAll(() => servers.forEach((s) => s.close()));

  it("finds nothing of the host's or another dyno's services, on loopback or through the bridge", async () => {
    // Stand-ins for workerd's inspector and Postgres (loopback) and an agent listening on every address.
    const [loopbackPort, anyPort] = [await listen("127.0.0.1"), await listen("0.0.0.0")];
    const { sup } = await fixture.start();
    const a = desiredDyno();
    const b = desiredDyno();
    sup.ensure(a);
    sup.ensure(b);
    const [ia, ib] = [await up(sup, a), await up(sup, b)];
    const gateway = ia.address!.replace(/\.\d+$/, ".1");
    const tryConnect = async (host: string, port: number) => (await sh(at(ia), `${CONNECT} ${host} ${port}`)).stdout.trim();

    // The method works: the dyno reaches its own server.
    expect(await tryConnect("127.0.0.1", ia.port!)).toBe("connected");
    expect(await tryConnect("127.0.0.1", loopbackPort)).toBe("ECONNREFUSED");
    expect(await tryConnect(gateway, loopbackPort)).not.toBe("connected");
    expect(await tryConnect(gateway, anyPort)).not.toBe("connected");
    // Another tenant's dyno, directly, past the router.
    expect(await tryConnect(ib.address!, ib.port!)).not.toBe("connected");
    // The host's agent can still reach both (it proxies routed requests to them).
    expect((await get(at(ib), "/")).status).toBe(200);
  });

  it("shows a dyno its own processes only, and no cgroup tree, platform home or other dyno", async () => {
    const { sup, workDir } = await fixture.start();
    const a = desiredDyno();
    const b = desiredDyno();
    sup.ensure(a);
    sup.ensure(b);
    const [ia, ib] = [await up(sup, a), await up(sup, b)];
    const procs = await sh(at(ia), "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done");
    // Pid 1 is the sandbox's own init (bwrap); everything else is the tenant's.
    const commands = procs.stdout.split("\n").filter((c) => c && !c.startsWith("/usr/bin/bwrap "));
    expect(commands.some((c) => c.includes("server.js"))).toBe(true);
    expect(commands.length).toBeLessThan(20);
    expect(commands.join("\n")).not.toMatch(/vitest|dynoplane|postgres|workerd/);
    expect((await sh(at(ia), "ls /sys/fs/cgroup")).status).not.toBe(0);
    for (const hidden of [workDir, ib.dir!, os.homedir(), process.cwd()]) {
      expect((await sh(at(ia), `test -e '${hidden}' && echo visible || echo hidden`)).stdout.trim(), hidden).toBe("hidden");
    }
    // The app is at /app, as on Heroku, owned by the app's own uid; the rest of the system is read-only.
    expect((await sh(at(ia), "touch /usr/planted 2>&1; echo $?")).stdout).toMatch(/Read-only file system/);
    expect((await sh(at(ia), "touch /app/mine && echo ok")).stdout.trim()).toBe("ok");
  });

  it("applies PATH, LD_PRELOAD, BASH_ENV and IFS config vars to the app alone, never to anything run as root", async () => {
    const marker = `pwned-${randomInt(1e9)}`;
    // Every program the sandbox is made with, planted in the slug, plus a library to preload.
    const plant = `#!/bin/sh\necho "$(/usr/bin/basename "$0") $(/usr/bin/id -u)" >> /tmp/${marker}\nexec "/usr/bin/$(/usr/bin/basename "$0")" "$@"\n`;
    const extra: Record<string, string> = { "bin/evil.sh": `echo "bash_env $(/usr/bin/id -u)" >> /tmp/${marker}\n` };
    for (const name of ["sh", "setpriv", "nsenter", "bwrap", "cat", "env", "mount", "ip", "tar", "node", "id"]) extra[`bin/${name}`] = plant;
    const cc = spawnSync("cc", ["--version"]).status === 0;
    const slug = buildSlug(extra);
    const withLib = path.join(path.dirname(slug), "with-lib.tgz");
    if (cc) {
      const src = path.join(path.dirname(slug), "evil.c");
      writeFileSync(
        src,
        `#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void own(void) { FILE *f = fopen("/tmp/${marker}", "a"); if (f) { fprintf(f, "preload %d\\n", (int)geteuid()); fclose(f); } }\n`,
      );
      execFileSync("tar", ["-xzf", slug, "-C", path.dirname(slug)]);
      execFileSync("cc", ["-shared", "-fPIC", "-o", path.join(path.dirname(slug), "app", "evil.so"), src]);
      execFileSync("tar", ["-czf", withLib, "-C", path.dirname(slug), "./app"]);
    }
    const { sup } = await fixture.start({ slugPath: async () => (cc ? withLib : slug) });
    const env = {
      PATH: "/app/bin:/usr/local/bin:/usr/bin:/bin",
      BASH_ENV: "/app/bin/evil.sh",
      ENV: "/app/bin/evil.sh",
      IFS: "x",
      ...(cc ? { LD_PRELOAD: "/app/evil.so" } : {}),
    };
    const dyno = desiredDyno({ env });
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    const seen = (await get(at(info), "/env")).body;
    // IFS, as on Heroku, is the shell's own business: it does not travel into programs.
    const { IFS: _ifs, ...passed } = env;
    expect(JSON.parse(seen)).toMatchObject(passed);
    // stdin from /dev/null: with a socket there, bash reads bashrc instead of BASH_ENV.
    await sh(at(info), "bash -c true < /dev/null; id");
    const inside = (await sh(at(info), `/usr/bin/cat /tmp/${marker}`)).stdout.split("\n").filter(Boolean);
    // The planted programs did run, as the tenant: the attack was live, and it stayed inside.
    expect(inside).toEqual(expect.arrayContaining([expect.stringMatching(/^node \d+$/), expect.stringMatching(/^bash_env \d+$/)]));
    if (cc) expect(inside).toEqual(expect.arrayContaining([expect.stringMatching(/^preload \d+$/)]));
    expect(inside.filter((l) => / 0$/.test(l))).toEqual([]);
    expect(existsSync(`/tmp/${marker}`)).toBe(false);
    rmSync(path.dirname(slug), { recursive: true, force: true });
  });

  it("ends every process of a dyno with it, detached ones included", async () => {
    const { sup } = await fixture.start();
    const dyno = desiredDyno();
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    const marker = `${randomInt(1e6, 9e6)}`;
    await sh(at(info), `setsid sleep 1000.${marker} > /dev/null 2>&1 < /dev/null & nohup sleep 1001.${marker} > /dev/null 2>&1 &`);
    await waitFor("the detached sleeps", () => hostProcesses(marker).length === 2);
    await sup.stop(dyno.id);
    expect(hostProcesses(marker)).toEqual([]);
  });

  it("delivers SIGTERM to a dyno stopped while its sandbox is still starting, without an R12", async () => {
    const { sup, lines } = await fixture.start();
    const marker = `${randomInt(1e6, 9e6)}`;
    const dyno = desiredDyno({ name: "worker.1", type: "worker", command: `exec sleep 600.${marker}` });
    sup.ensure(dyno);
    await waitFor("the sandbox's first process", () => sup.inspect(dyno.id)?.pid);
    await sup.stop(dyno.id);
    const said = lines.filter((l) => l.dyno === "worker.1").map((l) => l.text);
    expect(said).toContain("Stopping all processes with SIGTERM");
    expect(said.join("\n")).not.toContain("R12");
    expect(hostProcesses(marker)).toEqual([]);
  });

  it("gives a dyno a disk of its size: writing past it is ENOSPC, and nothing of it stays on the host", async () => {
    const { sup } = await fixture.start();
    // An unknown size gets its memory as its disk: 128 MB here.
    const dyno = desiredDyno({ size: "Test", memory_mb: 128 });
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    const fill = await sh(at(info), "dd if=/dev/zero of=/tmp/fill bs=1M count=200 2>&1; echo more >> /app/more.txt 2>&1; df -m /tmp | tail -1");
    expect(fill.stdout).toMatch(/No space left on device/);
    expect(fill.stdout).toMatch(/tmpfs\s+128\s/);
    expect(sup.inspect(dyno.id)?.state).toBe("up");
    const dir = info.dir!;
    await sup.stop(dyno.id);
    expect(existsSync(dir)).toBe(false);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dir);
  });

  it("stops a fork bomb at the pids limit while the host's other dynos keep answering", { timeout: 120_000 }, async () => {
    const { sup, lines } = await fixture.start();
    const web = desiredDyno();
    const bomb = desiredDyno({ name: "worker.1", type: "worker", size: "Test", memory_mb: 256, command: "b() { b | b & }; b; sleep 600" });
    sup.ensure(web);
    const iw = await up(sup, web);
    sup.ensure(bomb);
    const ib = await up(sup, bomb);
    // The bomb grows until the kernel refuses it a fork at its cgroup's limit (its shells then
    // say so and die, so the count swings below the limit again): never past the limit.
    let most = 0;
    await waitFor(
      "the bomb refused forks at its limit",
      () => {
        most = Math.max(most, ib.sandbox!.cgroup.pids().length);
        return lines.some((l) => l.dyno === "worker.1" && /Cannot fork/.test(l.text));
      },
      90_000,
    );
    expect(most).toBeLessThanOrEqual(256);
    expect((await get(at(iw), "/")).status).toBe(200);
    await sup.stop(bomb.id);
    expect((await get(at(iw), "/")).status).toBe(200);
  });
});
