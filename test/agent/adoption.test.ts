import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SandboxHost, sandboxProblems } from "../../src/agent/sandbox/index.ts";
import type { Supervisor } from "../../src/agent/supervisor.ts";
import type { DesiredDyno, LogLine } from "../../src/protocol/host.ts";
import { alive, appPid, at, buildSlug, desiredDyno, get, startSupervisor, tempDir, waitFor } from "./support.ts";

// An agent replaced by another (an upgrade, or one that died) leaves its dynos running; the
// next agent on the work dir adopts them: same processes, output still logged, crashes
// restarted with the config vars the control plane sends, stops graceful as ever.

const up = (sup: Supervisor, dyno: DesiredDyno) => waitFor(`${dyno.name} up`, () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000);
const text = (lines: LogLine[], dyno: DesiredDyno) => lines.filter((l) => l.dyno === dyno.name).map((l) => l.text);

describe.skipIf(sandboxProblems().length > 0)("a host agent handing its dynos to the next one", { timeout: 120_000 }, () => {
  const slug = buildSlug({ "bin/tick": '#!/bin/sh\nn=0\nwhile true; do n=$((n + 1)); echo "tick $n"; sleep 0.2; done\n' });
  const cleanups: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A supervisor over `workDir` with sandboxes of its own, as one agent's run. */
  const agentRun = async (workDir: string, log: string[] = []) => {
    const sandboxes = await SandboxHost.create(workDir, { log: (m) => log.push(m) });
    const run = await startSupervisor(slug, cleanups, { workDir, sandboxes });
    cleanups.push(() => sandboxes.close());
    return { ...run, sandboxes };
  };

  it("keeps every dyno running through the hand-over: same processes, no failed request, output and crashes handled by the new agent", async () => {
    const workDir = tempDir("dynoplane-adopt-");
    const first = await agentRun(workDir);
    const web = desiredDyno({ env: { VERSION: "1" } });
    const worker = desiredDyno({ name: "worker.1", type: "worker", command: "bin/tick", app_id: web.app_id });
    first.sup.ensure(web);
    first.sup.ensure(worker);
    const before = await up(first.sup, web);
    await up(first.sup, worker);
    const webPid = appPid(before);

    // Requests straight to the dyno's address all through the hand-over, each on a fresh connection.
    let failed = 0;
    let answered = 0;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        const ok = await get(at(before), "/").then(
          (r) => r.status === 200,
          () => false,
        );
        if (ok) answered++;
        else failed++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    expect(await first.sup.release()).toBe(2);
    const said: string[] = [];
    const second = await agentRun(workDir, said);
    const adopted = second.sup.inspect(web.id)!;
    expect(adopted).toMatchObject({ state: "up", instance: web.instance, address: before.address, port: before.port });
    expect(second.sup.inspect(worker.id)).toMatchObject({ state: "up", instance: worker.instance });
    expect(appPid(adopted)).toBe(webPid);
    expect(
      second.sup
        .observed()
        .map((o) => [o.id, o.state])
        .sort(),
    ).toEqual(
      [
        [web.id, "up"],
        [worker.id, "up"],
      ].sort(),
    );

    // The worker's output, and the web dyno's, reach the new agent's log.
    await waitFor("the worker's ticks in the new agent's log", () => text(second.lines, worker).filter((t) => /^tick \d+$/.test(t)).length >= 3, 10_000);
    expect((await get(at(adopted), "/log")).status).toBe(200);
    await waitFor("the web dyno's line in the new agent's log", () => text(second.lines, web).includes("request logged"));
    // Nothing of a start: to the app, nothing happened.
    expect(text(second.lines, web).filter((t) => /^(Starting process|State changed)/.test(t))).toEqual([]);

    await new Promise((r) => setTimeout(r, 500));
    looping = false;
    await loop;
    expect(answered).toBeGreaterThan(20);
    expect(failed).toBe(0);

    // A crash before the control plane named the dyno again waits for its config vars ...
    const workerBefore = second.sup.inspect(worker.id)!;
    for (const pid of workerBefore.sandbox!.tenantPids()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch (err) {
        // A short-lived process of the worker's (its sleep) that ended on its own meanwhile.
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    }
    await waitFor("the worker crashed", () => second.sup.inspect(worker.id)?.state === "crashed");
    expect(text(second.lines, worker)).toContain("Process exited with status 137");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(second.sup.inspect(worker.id)?.state).toBe("crashed");
    // ... and the desired set brings them: it starts again, and the web dyno restarts with them.
    second.sup.reconcile([web, worker]);
    await up(second.sup, worker).catch((err: Error) => {
      throw new Error(`${err.message}: ${text(second.lines, worker).slice(-8).join(" | ")}`);
    });
    process.kill(webPid, "SIGKILL");
    await waitFor(
      "the web dyno crashed and up again",
      () => second.sup.inspect(web.id)?.state === "up" && second.sup.inspect(web.id)!.pid !== adopted.pid,
      20_000,
    );
    expect(JSON.parse((await get(at(second.sup.inspect(web.id)!), "/")).body)).toEqual({ version: "1" });

    // A stop of an adopted dyno is Heroku's: SIGTERM, the app's own exit status.
    const third = desiredDyno({ app_id: web.app_id, name: "web.2" });
    second.sup.ensure(third);
    await up(second.sup, third);
    expect(await second.sup.release()).toBe(3);
    const last = await agentRun(workDir);
    expect(last.sup.inspect(third.id)?.state).toBe("up");
    await last.sup.stop(third.id);
    expect(text(last.lines, third)).toEqual([
      "Stopping all processes with SIGTERM",
      "got SIGTERM",
      "Process exited with status 0",
      "State changed from up to down",
    ]);
    // Dynos the control plane no longer wants end at its first desired set.
    last.sup.reconcile([web]);
    await waitFor("the worker ended", () => !last.sup.inspect(worker.id));
    expect(last.sup.inspect(web.id)?.state).toBe("up");
  });

  it("adopts nothing a record merely claims: a process outside the sandbox's cgroup is neither adopted nor touched", async () => {
    const workDir = tempDir("dynoplane-adopt-");
    const first = await agentRun(workDir);
    const a = desiredDyno();
    const b = desiredDyno();
    first.sup.ensure(a);
    first.sup.ensure(b);
    const [ia, ib] = [await up(first.sup, a), await up(first.sup, b)];
    const bystander = spawn("sleep", ["60"], { stdio: "ignore" });
    cleanups.push(() => void bystander.kill("SIGKILL"));
    expect(await first.sup.release()).toBe(2);

    // b's record now names the bystander as its monitor; a planted record names it too.
    const recordOf = (dir: string) => path.join(dir, "ctl", "record.json");
    const record = JSON.parse(readFileSync(recordOf(ib.dir!), "utf8"));
    writeFileSync(recordOf(ib.dir!), JSON.stringify({ ...record, pid: bystander.pid }));
    const planted = path.join(workDir, "sandboxes", "planted-0000");
    mkdirSync(path.join(planted, "ctl"), { recursive: true });
    writeFileSync(recordOf(planted), JSON.stringify({ ...record, pid: bystander.pid, dyno: { ...record.dyno, id: crypto.randomUUID() } }));

    const said: string[] = [];
    const second = await agentRun(workDir, said);
    expect(second.sup.summaries().map((s) => s.id)).toEqual([a.id]);
    expect(said.join("\n")).toMatch(/not adopting web\.1 of agent-test .*its monitor is not running in its cgroup/);
    // b's sandbox was ended and removed like any leftover; the bystander runs on.
    expect(readdirSync(path.join(workDir, "sandboxes"))).toEqual([path.basename(ia.dir!)]);
    expect(alive(bystander.pid!)).toBe(true);
    expect(second.sup.inspect(a.id)?.state).toBe("up");
  });
});
