import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import type { Readable } from "node:stream";
import { and, eq, sql } from "drizzle-orm";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { actAt } from "../../src/cron/clock.ts";
import type { Database } from "../../src/db/client.ts";
import { accounts, appFeatures, apps, dynos, dynoUsage, formations, hosts, keepAlive, releases, slugs } from "../../src/db/schema/index.ts";
import type { Command } from "../../src/protocol/host.ts";
import { ecoUsage } from "../../src/services/eco/eco.ts";
import { createHost, recordObservedDynos } from "../../src/services/fleet/hosts.ts";
import { platform } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, seedApp, throwawaySigningKey } from "../support/own-database.ts";

// The scheduled handler on an injected clock: the Worker's bundle in workerd (Miniflare),
// fired with `scheduledTime` as Cloudflare fires it, on a database of its own. A host is
// played by a server here: it answers routed requests, and reports a dyno up the moment it
// is told to start one, at the simulated time (so the usage history follows that clock).

const HOUR = 3600;
const TICK_MS = 600_000;
const APPS_DOMAIN = "apps.eco.test";

describe.skipIf(!platform().adminDatabaseUrl)("eco dynos on the scheduled handler's clock", () => {
  let own: OwnDatabase;
  let db: Database;
  let mf: Miniflare;
  let server: http.Server;
  let hostId: string;
  /** The simulated time: scheduled runs are fired at it, and the host reports at it. */
  let clock = new Date(0);
  /** What the host saw: each dyno's up and down moments, on the simulated clock. */
  const history = new Map<string, { upAt: number | null; upS: number; starts: number; stops: number }>();
  const routed: string[] = [];
  let workerErrors = "";

  const record = (dynoId: string) => {
    let h = history.get(dynoId);
    if (!h) history.set(dynoId, (h = { upAt: null, upS: 0, starts: 0, stops: 0 }));
    return h;
  };

  beforeAll(async () => {
    own = await createOwnDatabase("eco");
    db = own.handle.db;
    const { host } = await createHost(db, "simulated");
    hostId = host.id;
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", async () => {
        if (req.url === "/commands") {
          const command = JSON.parse(body) as Command;
          if (command.op === "start") {
            const h = record(command.dyno.id);
            h.starts++;
            h.upAt = clock.getTime();
            await actAt(db, clock);
            await recordObservedDynos(db, hostId, [{ id: command.dyno.id, instance: command.dyno.instance, state: "up", port: 1, exit_code: null }]);
          } else if (command.op === "stop") {
            const h = record(command.dyno_id);
            h.stops++;
            if (h.upAt !== null) h.upS += (clock.getTime() - h.upAt) / 1000;
            h.upAt = null;
          }
          return res.writeHead(202, { "content-type": "application/json" }).end("{}");
        }
        routed.push(String(req.url));
        res.writeHead(200, { "content-type": "text/plain" }).end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await db.update(hosts).set({ state: "up", capacityMb: 1_000_000, url, lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, hostId));

    const bundle = path.join(platform().home, "worker", "bundle");
    mf = new Miniflare({
      modules: true,
      scriptPath: path.join(bundle, "index.js"),
      modulesRoot: bundle,
      compatibilityDate: "2026-04-01",
      compatibilityFlags: ["nodejs_compat", "enable_request_signal"],
      bindings: {
        DATABASE_URL: own.url,
        COMMAND_SIGNING_KEY: await throwawaySigningKey(),
        API_HOST: "api.eco.test",
        APPS_DOMAIN,
        PUBLIC_PORT_SUFFIX: "",
        BOOT_TIMEOUT_S: "60",
        // The simulated months lie ahead: this Worker believes the scheduled time whatever it is.
        CRON_CLOCK_MAX_SKEW_S: String(10 * 365 * 24 * HOUR),
      },
      durableObjects: {
        LOG_CHANNEL: { className: "LogChannel", useSQLite: true },
        APP_COORDINATOR: { className: "AppCoordinator", useSQLite: true },
      },
      cf: false,
      // Thousands of runs each log a line per job: kept, not echoed (shown if a run fails).
      handleRuntimeStdio(stdout: Readable, stderr: Readable) {
        stdout.on("data", () => {});
        stderr.on("data", (d: Buffer) => (workerErrors = (workerErrors + d.toString()).slice(-20_000)));
      },
    });
    await mf.ready;
  }, 120_000);

  afterAll(async () => {
    await mf?.dispose();
    await own?.drop();
    server?.close();
  });

  /** Fires the scheduled handler at `at`, as Cloudflare would. */
  const tick = async (at: Date) => {
    clock = at;
    await actAt(db, at);
    const worker = await mf.getWorker();
    const result = await worker.scheduled({ scheduledTime: at, cron: "*/10 * * * *" });
    expect(result.outcome, workerErrors).toBe("ok");
  };

  /** An eco app with one web dyno up on the simulated host since `since`, last visited then. */
  const ecoApp = async (prefix: string, since: Date, owner?: string) => {
    let { account, app } = await seedApp(db, prefix);
    if (owner) {
      app = (await db.update(apps).set({ ownerId: owner }).where(eq(apps.id, app.id)).returning())[0]!;
      account = (await db.select().from(accounts).where(eq(accounts.id, owner)))[0]!;
    }
    const [slug] = await db
      .insert(slugs)
      .values({ appId: app!.id, blobKey: "slugs/none.tar.gz", size: 1, processTypes: { web: "node server.js" } })
      .returning();
    const [release] = await db
      .insert(releases)
      .values({ appId: app!.id, version: 1, description: "Deploy", userEmail: account.email, slugId: slug!.id })
      .returning();
    await db.insert(formations).values({ appId: app!.id, type: "web", quantity: 1, size: "Eco", command: "node server.js" });
    await db.update(apps).set({ lastRequestAt: since }).where(eq(apps.id, app!.id));
    await actAt(db, since);
    const [dyno] = await db
      .insert(dynos)
      .values({ appId: app!.id, releaseId: release!.id, name: "web.1", type: "web", command: "node server.js", size: "Eco", hostId, state: "up" })
      .returning();
    record(dyno!.id).upAt = since.getTime();
    return { account, app: app!, dyno: dyno! };
  };

  const enableKeepAlive = async (appId: string) => {
    await db.insert(appFeatures).values({ appId, name: "keep-alive", enabled: true });
    await db.insert(keepAlive).values({ appId });
  };

  /** A visitor's request for the app, as the router receives it (its own Host header). */
  const visit = async (name: string) => {
    const url = await mf.ready;
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ host: url.hostname, port: url.port, path: "/", headers: { Host: `${name}.${APPS_DOMAIN}` } }, (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        })
        .on("error", reject);
    });
  };

  const dynoOf = async (id: string) => (await db.select().from(dynos).where(eq(dynos.id, id)))[0]!;
  const logOf = async (appId: string) => {
    const ns = await mf.getDurableObjectNamespace("LOG_CHANNEL");
    const channel = ns.get(ns.idFromName(appId)) as unknown as { recent(o: { limit: number }): Promise<{ dyno: string; text: string }[]> };
    return channel.recent({ limit: 1500 });
  };

  it("puts an eco app to sleep after 30 idle minutes, not before, saying `Idling`", async () => {
    const since = new Date(Date.UTC(2027, 0, 10, 12, 0, 30));
    const { app, dyno } = await ecoApp("idle", since);
    await tick(new Date(Date.UTC(2027, 0, 10, 12, 30)));
    expect(await dynoOf(dyno.id)).toMatchObject({ desired: "up", state: "up" });
    await tick(new Date(Date.UTC(2027, 0, 10, 12, 40)));
    expect(await dynoOf(dyno.id)).toMatchObject({ desired: "sleeping", state: "idle" });
    expect((await logOf(app.id)).map((l) => [l.dyno, l.text])).toContainEqual(["web.1", "Idling"]);
    // Its 39.5 minutes up, to the second, on the run's clock.
    const [usage] = await db.select().from(dynoUsage).where(eq(dynoUsage.dynoId, dyno.id));
    expect((usage!.endedAt!.getTime() - usage!.startedAt.getTime()) / 1000).toBe(39 * 60 + 30);
  });

  it(
    "keeps pinged apps awake through February's last week inside their pool, three weeks' use behind them: one app alone, three sharing an account",
    async () => {
      // Three weeks of February already spent as keep-alive spends them (about 19 hours a
      // day per account): the last week, simulated run by run, must land the month inside
      // the pool with most of it used. (A whole simulated month takes four times as long
      // and repeats the same days; the planner's arithmetic is unit-tested in keep-alive.test.ts.)
      const monthStart = new Date(Date.UTC(2027, 1, 1));
      const start = new Date(Date.UTC(2027, 1, 22));
      const end = new Date(Date.UTC(2027, 2, 1));
      const solo = await ecoApp("solo", start);
      const trio = [await ecoApp("trio", start)];
      trio.push(await ecoApp("trio", start, trio[0]!.account.id), await ecoApp("trio", start, trio[0]!.account.id));
      const all = [solo, ...trio];
      const spentS = new Map<string, number>();
      for (const [group, hoursADay] of [
        [[solo], 19],
        [trio, 19 / 3],
      ] as const) {
        for (const a of group) {
          const rows = Array.from({ length: 21 }, (_, day) => {
            const startedAt = new Date(monthStart.getTime() + day * 24 * HOUR * 1000 + 4 * HOUR * 1000);
            return {
              accountId: a.account.id,
              appId: a.app.id,
              dynoId: a.dyno.id,
              dynoName: "web.1",
              size: "Eco",
              startedAt,
              endedAt: new Date(startedAt.getTime() + hoursADay * HOUR * 1000),
            };
          });
          await db.insert(dynoUsage).values(rows);
          spentS.set(a.app.id, 21 * hoursADay * HOUR);
        }
      }
      for (const a of all) await enableKeepAlive(a.app.id);
      routed.length = 0;

      const began = Date.now();
      for (let t = start.getTime(); t < end.getTime(); t += TICK_MS) await tick(new Date(t));
      console.log(`February's last week: ${(end.getTime() - start.getTime()) / TICK_MS} scheduled runs in ${Date.now() - began} ms`);

      clock = new Date(end.getTime() - 1);
      for (const a of all) {
        const h = record(a.dyno.id);
        if (h.upAt !== null) h.upS += (clock.getTime() - h.upAt) / 1000;
        h.upAt = null;
      }
      const usage = await ecoUsage(db, [solo.account.id, trio[0]!.account.id], clock);
      const pool = 550 * HOUR;
      for (const [owner, used] of usage) {
        // The pool lasts the month, and keep-alive spent most of it.
        expect(used.used, `account ${owner}`).toBeLessThan(pool);
        expect(used.used, `account ${owner}`).toBeGreaterThan(0.9 * pool);
      }
      for (const a of all) {
        const h = record(a.dyno.id);
        const metered = usage.get(a.account.id)!.apps.get(a.app.id)! - spentS.get(a.app.id)!;
        // Metering matches the host's own account of the dyno's uptime: within a second per dyno-hour.
        expect(Math.abs(metered - h.upS)).toBeLessThanOrEqual(Math.max(1, h.upS / HOUR));
        // Awake through the day, asleep at night: about one sleep and one wake a day, no more.
        expect(h.stops).toBeGreaterThanOrEqual(5);
        expect(h.stops).toBeLessThanOrEqual(8);
        expect(h.starts).toBeLessThanOrEqual(8);
      }
      // The pings went through the router to the apps' own dynos, and nowhere else.
      expect(new Set(routed)).toEqual(new Set(all.map((a) => `/proxy/${a.dyno.id}/`)));
      const lines = await logOf(solo.app.id);
      expect(lines.some((l) => l.dyno === "keep-alive" && / status=200 /.test(l.text))).toBe(true);
      expect(lines.some((l) => l.dyno === "router" && /path="\/"/.test(l.text))).toBe(true);
    },
    10 * 60_000,
  );

  it("puts an account's eco dynos to sleep when its hours run out, answers H82, and wakes them next month", async () => {
    const march = new Date(Date.UTC(2027, 2, 15));
    const { account, app, dyno } = await ecoApp("spent", new Date(march.getTime() - 60_000));
    await enableKeepAlive(app.id);
    // Nearly all of the month's pool went on two earlier dynos.
    for (const name of ["web.1", "worker.1"]) {
      await db.insert(dynoUsage).values({
        accountId: account.id,
        appId: app.id,
        dynoId: crypto.randomUUID(),
        dynoName: name,
        size: "Eco",
        startedAt: new Date(Date.UTC(2027, 2, 1)),
        endedAt: new Date(Date.UTC(2027, 2, 1) + (275 * HOUR - 15) * 1000),
      });
    }
    routed.length = 0;
    await tick(march);
    expect(await dynoOf(dyno.id)).toMatchObject({ desired: "sleeping", state: "idle" });
    const [marked] = await db.select().from(accounts).where(eq(accounts.id, account.id));
    expect(marked!.ecoExhaustedUntil?.toISOString()).toBe("2027-04-01T00:00:00.000Z");
    expect((await logOf(app.id)).map((l) => l.text)).toContain("Eco dyno hours quota exhausted: eco dynos sleep until 2027-04-01 00:00 UTC");
    // Keep-alive does not wake it, and a visitor gets the error page with H82.
    await tick(new Date(march.getTime() + TICK_MS));
    expect(routed.filter((r) => r.includes(dyno.id))).toEqual([]);
    const res = await visit(app.name);
    expect(res.status).toBe(503);
    expect(res.text).toContain("eco dyno hours for this month are used up");
    // A visitor's router line reaches the log with the others of its few milliseconds.
    await vi.waitFor(
      async () => {
        const router = (await logOf(app.id)).filter((l) => l.dyno === "router").map((l) => l.text);
        expect(router.some((l) => l.startsWith('at=error code=H82 desc="Eco dyno quota exhausted"'))).toBe(true);
      },
      { timeout: 5_000, interval: 25 },
    );
    expect(await dynoOf(dyno.id)).toMatchObject({ desired: "sleeping" });

    // April: the mark is gone, and the next request wakes the app.
    await tick(new Date(Date.UTC(2027, 3, 1)));
    const [renewed] = await db.select().from(accounts).where(eq(accounts.id, account.id));
    expect(renewed!.ecoExhaustedUntil).toBeNull();
    const woke = await visit(app.name);
    expect(woke.status).toBe(200);
    expect(await dynoOf(dyno.id)).toMatchObject({ desired: "up", state: "up" });
  }, 120_000);

  it("pings only the platform's own app URLs: a rename is followed, a name that is no app's is never requested", async () => {
    const at = new Date(Date.UTC(2027, 5, 7, 15, 0));
    const { app, dyno } = await ecoApp("renamed", at);
    const { app: forged, dyno: forgedDyno } = await ecoApp("forged", at);
    for (const a of [app, forged]) {
      await db.update(accounts).set({ verified: true }).where(eq(accounts.id, a.ownerId));
      await enableKeepAlive(a.id);
    }
    // The owner renames the app; a hostile name (an outside host) is forced into the other row,
    // as nothing in the API would let it be.
    const renamed = `${app.name.slice(0, 20)}-new`;
    await db.update(apps).set({ name: renamed }).where(eq(apps.id, app.id));
    await db.update(apps).set({ name: "evil.example.com" }).where(eq(apps.id, forged.id));
    routed.length = 0;
    await tick(at);
    expect(routed.filter((r) => r.includes(dyno.id) || r.includes(forgedDyno.id))).toEqual([`/proxy/${dyno.id}/`]);
    const router = (await logOf(app.id)).filter((l) => l.dyno === "router").map((l) => l.text);
    expect(router.some((l) => l.includes(`host=${renamed}.${APPS_DOMAIN} `))).toBe(true);
    const [refused] = await db.select().from(keepAlive).where(eq(keepAlive.appId, forged.id));
    expect(refused).toMatchObject({ lastStatus: null, lastError: "invalid app name" });
  }, 60_000);

  it("pings each app once per slot however often the run repeats", async () => {
    const at = new Date(Date.UTC(2027, 4, 3, 15, 0));
    const { app, dyno } = await ecoApp("twice", at);
    await db
      .update(accounts)
      .set({ verified: true })
      .where(eq(accounts.id, (await db.select().from(apps).where(eq(apps.id, app.id)))[0]!.ownerId));
    await enableKeepAlive(app.id);
    routed.length = 0;
    const worker = await mf.getWorker();
    clock = at;
    await Promise.all([0, 1, 2].map(() => worker.scheduled({ scheduledTime: at, cron: "*/10 * * * *" })));
    await tick(new Date(at.getTime() + 5_000));
    const mine = () => routed.filter((r) => r.includes(dyno.id));
    expect(mine()).toHaveLength(1);
    const [row] = await db
      .select()
      .from(keepAlive)
      .where(and(eq(keepAlive.appId, app.id)));
    expect(row).toMatchObject({ lastStatus: 200, lastError: null });
    await tick(new Date(at.getTime() + TICK_MS));
    expect(mine()).toHaveLength(2);
  }, 60_000);
});
