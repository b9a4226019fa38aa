import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { appUser } from "../../src/agent/dyno-user.ts";
import { LogBuffer } from "../../src/agent/log-buffer.ts";
import type { Supervisor } from "../../src/agent/supervisor.ts";
import type { DesiredDyno, LogLine } from "../../src/protocol/host.ts";
import { alive, appPid, at, desiredDyno, get, supervisorFixture, waitFor, type Target } from "./support.ts";

const { start: supervisor } = supervisorFixture();

const texts = (lines: LogLine[], source: LogLine["source"]) => lines.filter((l) => l.source === source).map((l) => l.text);
const up = (sup: Supervisor, dyno: DesiredDyno) => waitFor(`${dyno.name} up`, () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id));
const json = async (target: Target, p: string) => JSON.parse((await get(target, p)).body) as Record<string, unknown>;

describe("supervisor", () => {
  it("runs a web dyno with Heroku's environment until it answers on $PORT, and ships its output", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ env: { GREETING: "hello", VERSION: "1" } });
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    expect(sup.activeTarget(dyno.id)).toEqual(at(info));

    const env = await json(at(info), "/env");
    expect(env).toMatchObject({ PORT: String(info.port), DYNO: "web.1", PS: "web.1", HOME: "/app", GREETING: "hello" });
    // The agent's own environment (where its secret lives) stays out of the dyno.
    expect(Object.keys(env).filter((k) => k.startsWith("VITEST") || k.startsWith("DYNOPLANE"))).toEqual([]);
    expect((await json(at(info), "/whoami")).cwd).toBe("/app");

    await get(at(info), "/log");
    await waitFor("the request's log line", () => texts(lines, "app").includes("request logged"));
    expect(texts(lines, "app")).toEqual(expect.arrayContaining(["booting web.1 version 1", "a line on stderr"]));
    expect(lines.every((l) => l.dyno === "web.1" && l.app_id === dyno.app_id)).toBe(true);
    expect(texts(lines, "heroku").slice(0, 2)).toEqual(["Starting process with command `node server.js`", "State changed from starting to up"]);
    // With the address it listens on, where a router on this machine reaches it.
    expect(sup.observed()).toEqual([
      { id: dyno.id, instance: dyno.instance, state: "up", port: info.port, address: info.address ?? "127.0.0.1", exit_code: null },
    ]);
  });

  it.skipIf(process.getuid?.() !== 0)("runs dynos as an unprivileged user when the agent is root", async () => {
    const { sup } = await supervisor();
    const dyno = desiredDyno();
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    const who = await json(at(info), "/whoami");
    expect(who.uid).not.toBe(0);
    expect(who.gid).not.toBe(0);
    // Each app has a uid of its own, not the base dyno user's.
    expect(who.uid).toBe(appUser(sup.user, dyno.app_id)!.uid);
    expect(who.uid).not.toBe(sup.user!.uid);
  });

  it("restarts a killed dyno at once, on a freshly unpacked filesystem, and reports the crash it has moved on from", async () => {
    let changes = 0;
    const { sup, lines } = await supervisor({ onChange: () => changes++ });
    const dyno = desiredDyno();
    sup.ensure(dyno);
    const first = await up(sup, dyno);
    await get(at(first), "/write");
    expect(await json(at(first), "/read")).toEqual({ exists: true });
    const firstPid = appPid(first);
    process.kill(firstPid, "SIGKILL");
    const second = await waitFor("a new process", () => {
      const i = sup.inspect(dyno.id);
      return i?.state === "up" && i.pid !== first.pid && i;
    });
    expect(texts(lines, "heroku")).toEqual(
      expect.arrayContaining(["Process exited with status 137", "State changed from up to crashed", "State changed from crashed to starting"]),
    );
    expect(second.crashes).toBe(1);
    // Up again before any report: the next one still says it crashed, once.
    const report = sup.observed();
    expect(report).toEqual([{ id: dyno.id, instance: dyno.instance, state: "crashed", port: null, address: null, exit_code: 137 }]);
    const before = changes;
    sup.acknowledge(report);
    expect(changes).toBe(before + 1);
    expect(sup.observed()).toEqual([expect.objectContaining({ state: "up", port: second.port, exit_code: null })]);
    expect(appPid(second)).not.toBe(firstPid);
    expect(await json(at(second), "/read")).toEqual({ exists: false });
    expect(existsSync(first.dir!)).toBe(false);
  });

  it("kills a web dyno that does not bind $PORT in time (R10), then backs off", async () => {
    const { sup, lines } = await supervisor({ bootTimeoutMs: 2_000, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    const dyno = desiredDyno({ command: "node -e 'setInterval(() => {}, 1000)'" });
    sup.ensure(dyno);
    const pid = (await waitFor("a pid", () => sup.inspect(dyno.id)?.pid))!;
    const r10 = "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 2 seconds of launch";
    await waitFor("R10", () => texts(lines, "heroku").includes(r10), 5_000);
    await waitFor("the first process gone", () => !alive(pid));
    // The first crash restarts at once; the second waits out the back-off, shown as crashed.
    await waitFor("a second R10", () => texts(lines, "heroku").filter((t) => t === r10).length === 2, 8_000);
    const info = await waitFor("crashed", () => sup.inspect(dyno.id)?.state === "crashed" && sup.inspect(dyno.id));
    expect(info.crashes).toBe(2);
    expect(alive(info.pid!)).toBe(false);
    expect(texts(lines, "heroku")).toEqual(expect.arrayContaining(["Process exited with status 137", "State changed from starting to crashed"]));
    await new Promise((r) => setTimeout(r, 500));
    expect(sup.inspect(dyno.id)?.state).toBe("crashed");
    expect(sup.observed()[0]).toMatchObject({ state: "crashed", exit_code: 137, port: null });
  });

  it("stops with SIGTERM, and SIGKILLs a process that ignores it after the grace period", async () => {
    const { sup, lines } = await supervisor({ stopGraceMs: 1_500 });
    const polite = desiredDyno();
    const stubborn = desiredDyno({ name: "web.2", env: { IGNORE_TERM: "1" } });
    sup.ensure(polite);
    sup.ensure(stubborn);
    const [p, s] = [await up(sup, polite), await up(sup, stubborn)];
    const stubbornPid = appPid(s);

    // Which signal ended each process is read from the log, not from the clock.
    await sup.stop(polite.id);
    expect(alive(p.pid!)).toBe(false);
    expect(existsSync(p.dir!)).toBe(false);

    await sup.stop(stubborn.id);
    expect(alive(stubbornPid)).toBe(false);
    expect(existsSync(s.dir!)).toBe(false);

    const of = (name: string) => lines.filter((l) => l.dyno === name).map((l) => l.text);
    expect(of("web.1")).toEqual(expect.arrayContaining(["Stopping all processes with SIGTERM", "got SIGTERM", "State changed from up to down"]));
    expect(of("web.1").join("\n")).not.toContain("SIGKILL");
    expect(of("web.2")).toEqual(
      expect.arrayContaining([
        "Stopping all processes with SIGTERM",
        "got SIGTERM",
        "Error R12 (Exit timeout) -> At least one process failed to exit within 1.5 seconds of SIGTERM",
        "Stopping remaining processes with SIGKILL",
      ]),
    );
    expect(sup.observed().map((o) => o.state)).toEqual(["down", "down"]);
    expect(sup.inspect(polite.id)).toBeUndefined();
  });

  it("replaces a web dyno without a moment where it does not answer", async () => {
    // The old instance outlives the switch by the handoff (long here, so a busy machine still sees it).
    const { sup, lines } = await supervisor({ handoffMs: 6_000 });
    const v1 = desiredDyno({ env: { VERSION: "1" } });
    sup.ensure(v1);
    const old = await up(sup, v1);

    const seen: string[] = [];
    const failures: string[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const target = sup.activeTarget(v1.id);
        if (target === undefined) failures.push("no active target");
        else
          await get(target, "/").then(
            (r) => seen.push(JSON.parse(r.body).version),
            (e: Error) => failures.push(e.message),
          );
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const v2 = { ...v1, instance: desiredDyno().instance, env: { VERSION: "2" } };
    sup.ensure(v2);
    // While the new instance boots, the old one is what answers, and is what is reported.
    expect(sup.observed()[0]).toMatchObject({ instance: v1.instance, state: "up", port: old.port });
    await waitFor("the new instance up", () => sup.inspect(v1.id)?.instance === v2.instance && sup.inspect(v1.id)?.state === "up");
    // Routed to the new one now; a request sent to the old one a moment before still finds it.
    expect(sup.activeTarget(v1.id)).not.toEqual(at(old));
    expect(JSON.parse((await get(at(old), "/")).body).version).toBe("1");
    await waitFor("the old process gone", () => !alive(old.pid!));
    await new Promise((r) => setTimeout(r, 300));
    polling = false;
    await poller;

    expect(failures).toEqual([]);
    expect(seen[0]).toBe("1");
    expect(seen.at(-1)).toBe("2");
    expect(seen.indexOf("2")).toBeGreaterThan(0);
    expect(seen.slice(seen.indexOf("2"))).not.toContain("1");
    expect(sup.activeTarget(v1.id)).not.toEqual(at(old));
    expect(sup.observed()[0]).toMatchObject({ instance: v2.instance, state: "up" });
    // Heroku's restart lines; the old instance ends without a state line of its own, so the
    // log never says the dyno went down after its new instance came up.
    const said = texts(lines, "heroku");
    expect(said.slice(said.indexOf("Restarting"))).toEqual([
      "Restarting",
      "State changed from up to starting",
      `Starting process with command \`${v1.command}\``,
      "State changed from starting to up",
      "Stopping all processes with SIGTERM",
      expect.stringMatching(/^Process exited with status \d+$/),
    ]);
  });

  it("replaces other dyno types by stopping the old instance before starting the new one", async () => {
    const { sup, lines } = await supervisor();
    const v1 = desiredDyno({ name: "worker.1", type: "worker", command: "echo working on $VERSION; exec sleep 600", env: { VERSION: "1" } });
    sup.ensure(v1);
    const old = await up(sup, v1);
    const v2 = { ...v1, instance: desiredDyno().instance, env: { VERSION: "2" } };
    sup.ensure(v2);
    expect(sup.observed()[0]).toMatchObject({ instance: v2.instance, state: "starting" });
    const next = await waitFor("the new instance up", () => sup.inspect(v1.id)?.state === "up" && sup.inspect(v1.id)?.pid !== old.pid && sup.inspect(v1.id));
    expect(alive(old.pid!)).toBe(false);
    expect(alive(next.pid!)).toBe(true);
    await waitFor("the new instance's first line", () => lines.some((l) => l.text === "working on 2"));
    // Heroku's restart sequence, in its order: the old process ends before the new one starts.
    const platform = texts(lines, "heroku");
    expect(platform.slice(platform.indexOf("Restarting"))).toEqual([
      "Restarting",
      "State changed from up to starting",
      "Stopping all processes with SIGTERM",
      "Process exited with status 143",
      `Starting process with command \`${v1.command}\``,
      "State changed from starting to up",
    ]);
    const said = lines.map((l) => l.text);
    expect(said.indexOf("working on 2")).toBeGreaterThan(said.indexOf("Process exited with status 143"));
    expect(sup.activeTarget(v1.id)).toBeUndefined(); // only web dynos receive traffic
  });

  it("runs a one-off dyno once: its exit is reported once, as complete, and a heartbeat never starts it again", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ name: "run.1234", type: "run", command: "echo once from $DYNO; exit 2" });
    sup.ensure(dyno);
    await waitFor("the one-off's exit", () => texts(lines, "heroku").includes("Process exited with status 2"));
    await waitFor("its report", () => sup.observed().some((o) => o.id === dyno.id));
    expect(sup.observed()).toEqual([{ id: dyno.id, instance: dyno.instance, state: "down", port: null, exit_code: 2 }]);
    expect(texts(lines, "app")).toEqual(["once from run.1234"]);
    expect(texts(lines, "heroku")).toContain("State changed from up to complete");
    sup.acknowledge(sup.observed());
    expect(sup.observed()).toEqual([]);
    // A heartbeat naming it (or not) changes nothing: one-off dynos come and go by command.
    sup.reconcile([dyno]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(texts(lines, "app")).toEqual(["once from run.1234"]);
    expect(sup.inspect(dyno.id)).toBeUndefined();
  });

  it("keeps a running one-off dyno through heartbeats that do not name it, and stops it when its time to live is over", async () => {
    const { sup, lines } = await supervisor();
    const dyno = desiredDyno({ name: "run.4321", type: "run", command: "sleep 600", time_to_live_s: 2 });
    sup.ensure(dyno);
    await waitFor("the one-off up", () => sup.inspect(dyno.id)?.state === "up");
    sup.reconcile([]);
    expect(sup.inspect(dyno.id)?.state).toBe("up");
    await waitFor("its time to live over", () => texts(lines, "heroku").includes("Stopping process: its time to live (2 s) is over"), 15_000);
    await waitFor("it reported down", () => sup.observed().some((o) => o.id === dyno.id && o.state === "down"), 15_000);
    expect(sup.inspect(dyno.id)).toBeUndefined();
  });

  it("adopts the dynos a previous agent left running in the same work dir, and ends those the desired set does not name", async () => {
    const { sup, workDir } = await supervisor();
    const dyno = desiredDyno();
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    const pid = appPid(info);
    await sup.release();
    const next = await supervisor({ workDir });
    expect(next.sup.inspect(dyno.id)?.state).toBe("up");
    expect(alive(pid)).toBe(true);
    next.sup.reconcile([]);
    await waitFor("the dyno ended", () => !alive(pid));
    await waitFor("its filesystem gone", () => !existsSync(info.dir!));
  });

  it("runs a dyno as a bare process, on loopback, only where the operator turned sandboxes off", async () => {
    const { sup } = await supervisor({ sandboxes: null });
    const dyno = desiredDyno({ env: { VERSION: "bare" } });
    sup.ensure(dyno);
    const info = await up(sup, dyno);
    expect(info.sandbox).toBeUndefined();
    expect(info.address).toBe("127.0.0.1");
    expect(await json(at(info), "/")).toEqual({ version: "bare" });
    await sup.stop(dyno.id);
    expect(existsSync(info.dir!)).toBe(false);
  });

  it("keeps the agent responsive and its log buffer bounded while a dyno floods its output", async () => {
    const buffer = new LogBuffer(1_000);
    const { sup } = await supervisor({ sink: buffer.push });
    // `yes` writes with blocking writes, as fast as the pipe is drained, for three seconds.
    const dyno = desiredDyno({
      name: "worker.1",
      type: "worker",
      command: "timeout 3 yes 'a line, and another, and another'; echo flood over; exec sleep 600",
    });

    let maxLag = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 10);
      last = now;
    }, 10);
    const heapBefore = process.memoryUsage().heapUsed;
    sup.ensure(dyno);
    await waitFor("the flood to start", () => buffer.dropped > 0, 10_000);
    await new Promise((r) => setTimeout(r, 3_500));
    clearInterval(ticker);

    expect(buffer.size).toBeLessThanOrEqual(1_000);
    expect(buffer.dropped).toBeGreaterThan(10_000);
    expect(maxLag).toBeLessThan(2_000); // a blocked loop would lag for the whole flood
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(200 * 1024 * 1024);
    expect(sup.inspect(dyno.id)?.state).toBe("up");
  });
});
