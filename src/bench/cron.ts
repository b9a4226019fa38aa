import { mkdtempSync, rmSync, chmodSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { type SQL, sql } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { startPlatform } from "../local/platform.ts";
import { cpuMs as processCpuMs } from "./cpu.ts";
import { createHost } from "../services/fleet/hosts.ts";
import { slotOf } from "../services/eco/keep-alive.ts";

/**
 * `npm run bench:cron`: one scheduled run over many apps with keep-alive on (10,000 by
 * default), each with a web dyno on a stand-in host that answers every routed request at
 * once (a local sink). It prints the wall time until every app was pinged, the Worker's CPU
 * time per app (workerd's own, from /proc), and how the pings were split between the run
 * itself and the queue's messages; next to the floor: the same number of requests sent
 * straight to the sink from Node, with the same concurrency.
 */
export async function run(opts: { apps: number }): Promise<number> {
  const home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-bench-cron-"));
  chmodSync(home, 0o755);
  let pinged = 0;
  const sink = http.createServer((req, res) => {
    if (req.url?.startsWith("/proxy/")) pinged++;
    req.resume();
    res.writeHead(req.url === "/commands" ? 202 : 200, { "content-type": "text/plain", "content-length": "2" }).end("ok");
  });
  sink.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  // The second run is fired for the next slot, ten minutes ahead of the wall clock.
  const platform = await startPlatform({ home, quiet: true, ephemeral: true, noHost: true, cron: [], workerVars: { CRON_CLOCK_MAX_SKEW_S: "900" } });
  const handle = await openDb(platform.databaseUrl);
  let beat: NodeJS.Timeout | undefined;
  try {
    const db = handle.db;
    console.log(`Seeding ${opts.apps} apps with keep-alive on, each with a web dyno up on a stand-in host ...`);
    const { host } = await createHost(db, "bench-sink");
    // The stand-in host's heartbeat: it stays up.
    const alive = () =>
      db.execute(sql`update hosts set state = 'up', url = ${sinkUrl}, capacity_mb = 100000000, last_heartbeat_at = now() where id = ${host.id}`);
    await alive();
    beat = setInterval(() => void alive().catch(() => {}), 5_000);
    await seed(db, opts.apps, host.id);

    const count = async (query: SQL) => Number(((await db.execute(query)) as unknown as { rows: Array<{ n: number }> }).rows[0]!.n);

    /** One scheduled run at `now`, measured until every app was pinged. */
    const measure = async (label: string, now: Date) => {
      const pingedBefore = pinged;
      const outputBefore = platform.workerOutput().length;
      const cpuBefore = processCpuMs(platform.pids().worker);
      const started = performance.now();
      const outcome = await platform.fireScheduled("*/10 * * * *", now);
      const runMs = performance.now() - started;
      if (!outcome.ok) throw new Error(`the scheduled run failed: ${outcome.outcome}`);
      const slot = slotOf(now);
      for (;;) {
        const done = await count(sql`select count(*)::int as n from keep_alive where last_slot = ${slot} and last_pinged_at is not null`);
        if (done >= opts.apps) break;
        if (performance.now() - started > 15 * 60_000) throw new Error(`only ${done} of ${opts.apps} apps were pinged within 15 minutes`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const allMs = performance.now() - started;
      // Let the last log lines land before workerd's CPU is read.
      await new Promise((r) => setTimeout(r, 2_000));
      const cpuMs = processCpuMs(platform.pids().worker) - cpuBefore;
      const ok = await count(sql`select count(*)::int as n from keep_alive where last_slot = ${slot} and last_status = 200`);
      const latency = (
        (await db.execute(
          sql`select percentile_cont(array[0.5, 0.99]) within group (order by last_latency_ms) as p from keep_alive where last_slot = ${slot}`,
        )) as unknown as { rows: Array<{ p: number[] }> }
      ).rows[0]!.p;
      // The output kept is a tail: what this run printed is what follows the earlier length, at most.
      const lines = platform
        .workerOutput()
        .slice(-Math.max(0, platform.workerOutput().length - outputBefore))
        .split("\n");
      const run = lines.map((l) => /\{"cron":"keep-alive".*\}/.exec(l)?.[0]).find(Boolean);
      const messages = lines
        .map((l) => /\{"keep_alive_message".*\}/.exec(l)?.[0])
        .filter((l): l is string => !!l)
        .map((l) => JSON.parse(l) as { pinged: number });
      const summary = run ? (JSON.parse(run) as { pinged_here: number; queued_messages: number }) : null;
      console.log("");
      console.log(`${label}`);
      console.log(`  pings the dynos received:       ${pinged - pingedBefore} (${ok} answered 200)`);
      console.log(
        `  the scheduled run itself:       ${runMs.toFixed(0)} ms (pinged ${summary?.pinged_here ?? "?"} apps, queued ${summary?.queued_messages ?? "?"} messages)`,
      );
      console.log(
        `  queue consumer runs:            ${messages.length} messages, ${messages.reduce((n, m) => n + m.pinged, 0)} apps (${messages.length ? `${Math.min(...messages.map((m) => m.pinged))}-${Math.max(...messages.map((m) => m.pinged))} per message` : "none"})`,
      );
      console.log(`  one ping through the router:    median ${latency[0]!.toFixed(0)} ms, p99 ${latency[1]!.toFixed(0)} ms`);
      console.log(`  all apps pinged after:          ${(allMs / 1000).toFixed(1)} s (${((allMs / 600_000) * 100).toFixed(1)}% of the 10-minute interval)`);
      console.log(`  workerd CPU time:               ${cpuMs.toFixed(0)} ms, ${(cpuMs / opts.apps).toFixed(3)} ms per app`);
      return allMs;
    };

    const first = new Date();
    const coldMs = await measure(`Run 1 (${opts.apps} apps; every app's log channel is new)`, first);
    const warmMs = await measure("Run 2, the next slot (log channels exist, as every run after the first)", new Date(first.getTime() + 600_000));
    const floorMs = await directRequests(sinkUrl, opts.apps, 16);
    console.log("");
    console.log(`floor: ${opts.apps} requests straight to the sink from Node, 16 at once: ${floorMs.toFixed(0)} ms`);
    console.log(`ratio to the floor: run 1 ${(coldMs / floorMs).toFixed(1)}x, run 2 ${(warmMs / floorMs).toFixed(1)}x`);
    return pinged >= 2 * opts.apps ? 0 : 1;
  } finally {
    clearInterval(beat);
    await handle.close();
    await platform.stop();
    sink.close();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Inserts `n` verified accounts, each with one deployed eco app with keep-alive on and web.1 up on `hostId`. */
async function seed(db: Awaited<ReturnType<typeof openDb>>["db"], n: number, hostId: string): Promise<void> {
  const tag = Date.now().toString(36);
  await db.execute(sql`
    with a as (
      insert into accounts (email, password_hash, verified)
      select 'bench-' || ${tag} || '-' || i || '@example.com', 'x', true from generate_series(1, ${n}) i
      returning id, email
    ), p as (
      insert into apps (name, owner_id, last_request_at)
      select 'k' || ${tag} || '-' || substring(email from '-(\\d+)@'), id, now() from a
      returning id
    ), s as (
      insert into slugs (app_id, blob_key, size, process_types) select id, 'slugs/none.tar.gz', 1, '{"web":"node server.js"}'::jsonb from p returning id, app_id
    ), r as (
      insert into releases (app_id, version, description, user_email, slug_id) select app_id, 1, 'Deploy', 'bench@example.com', id from s returning id, app_id
    ), f as (
      insert into formations (app_id, type, quantity, size, command) select app_id, 'web', 1, 'Eco', 'node server.js' from r
    ), d as (
      insert into dynos (app_id, release_id, name, type, command, size, host_id, state, port)
      select app_id, id, 'web.1', 'web', 'node server.js', 'Eco', ${hostId}::uuid, 'up', 1 from r
    ), e as (
      insert into app_features (app_id, name, enabled) select id, 'keep-alive', true from p
    )
    insert into keep_alive (app_id) select id from p`);
}

/** Sends `n` GETs straight to the sink, `concurrency` at a time; the milliseconds it took. */
async function directRequests(url: string, n: number, concurrency: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const get = () =>
    new Promise<void>((resolve, reject) => {
      http
        .get(`${url}/direct`, { agent }, (res) => {
          res.resume();
          res.on("end", resolve);
        })
        .on("error", reject);
    });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < n) await get();
    }),
  );
  agent.destroy();
  return performance.now() - started;
}
