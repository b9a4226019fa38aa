import { readFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { and, eq, sql } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken, hashToken } from "../../src/auth/tokens.ts";
import type { Database } from "../../src/db/client.ts";
import {
  type AccountRow,
  type AppRow,
  accounts,
  apps,
  auditEvents,
  domainEvents,
  dynos,
  formations,
  hosts,
  oauthAuthorizations,
  releases,
  slugs,
  webhookEvents,
} from "../../src/db/schema/index.ts";
import type { Actor, Bindings } from "../../src/env.ts";
import type { Command } from "../../src/protocol/host.ts";
import { addCollaborator } from "../../src/services/access/collaborators.ts";
import { setConfigVars } from "../../src/services/apps/config-vars.ts";
import type { ServiceContext } from "../../src/services/context.ts";
import { restartDynos } from "../../src/services/dynos/dynos.ts";
import type { EventType } from "../../src/services/events/catalogue.ts";
import { pruneEvents } from "../../src/services/events/outbox.ts";
import { setAppFeature } from "../../src/services/apps/features.ts";
import { updateFormation } from "../../src/services/dynos/formation.ts";
import { createHost, recordObservedDynos } from "../../src/services/fleet/hosts.ts";
import { platform, tlsAgent } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, throwawaySigningKey } from "../support/own-database.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";

// One event per change, through the outbox: a Worker of its own (real workerd, the platform's
// bundle) on a database of its own, a host that records the commands it is sent, and an
// HTTPS receiver for the app's webhooks. For each kind of change: committed, its log lines,
// webhook deliveries, chart marks, audit row and host commands appear once, even when the
// dispatch is repeated (commands to hosts may go again: a host runs an instance once however
// often it is told); rolled back, none appears; committed by an instance that died before
// dispatching (its after-the-answer work never ran), they appear after the next request.

/** What one test's world is made of. */
interface World {
  db: Database;
  worker: SecondWorker;
  account: AccountRow;
  token: string;
  other: AccountRow;
  hostId: string;
  hostSecret: string;
}

/** A fresh app for one test: released (v1, v2 with a slug), a web process at 0 or 1 dyno on the recording host, and a webhook for everything. */
interface Seeded {
  app: AppRow;
  dynoId: string | null;
  instance: string | null;
}

interface Case {
  type: EventType;
  /** The change made through the API, as a client makes it. */
  api(w: World, s: Seeded): Promise<{ status: number }>;
  /** The same change by its verb, on `ctx` (for a rolled-back transaction or an instance that dies). */
  verb(ctx: ServiceContext, w: World, s: Seeded): Promise<unknown>;
  /** Whether the seeded app runs a web dyno. */
  running?: boolean;
  lines(w: World): string[];
  webhooks: string[];
  chart: string[];
  audited: boolean;
  commands: number;
}

const cases: Case[] = [
  {
    type: "formation.scaled",
    api: (w, s) => w.worker.api(`/apps/${s.app.name}/formation`, { method: "PATCH", token: w.token, body: { updates: [{ type: "web", quantity: 1 }] } }),
    verb: (ctx, _w, s) => updateFormation(ctx, s.app, [{ type: "web", quantity: 1 }]),
    lines: (w) => [`Scaled to web@1:Standard-1X by user ${w.account.email}`],
    webhooks: ["formation"],
    chart: ["scale"],
    audited: true,
    commands: 1,
  },
  {
    type: "release.created",
    running: true,
    api: (w, s) => w.worker.api(`/apps/${s.app.name}/config-vars`, { method: "PATCH", token: w.token, body: { GREETING: "hello" } }),
    verb: (ctx, _w, s) => setConfigVars(ctx, s.app, { GREETING: "hello" }),
    lines: (w) => [`Set GREETING config vars by user ${w.account.email}`, `Release v3 created by user ${w.account.email}`],
    webhooks: ["release"],
    chart: ["config"],
    audited: true,
    commands: 1,
  },
  {
    type: "dynos.restarted",
    running: true,
    api: (w, s) => w.worker.api(`/apps/${s.app.name}/dynos`, { method: "DELETE", token: w.token }),
    verb: (ctx, _w, s) => restartDynos(ctx, s.app),
    lines: (w) => [`Restart by user ${w.account.email}`],
    webhooks: [],
    chart: ["restart"],
    audited: true,
    commands: 1,
  },
  {
    type: "collaborator.added",
    api: (w, s) => w.worker.api(`/apps/${s.app.name}/collaborators`, { method: "POST", token: w.token, body: { user: w.other.email } }),
    verb: (ctx, w, s) => addCollaborator(ctx, { ...s.app, role: "owner", ownerEmail: w.account.email } as never, w.other.email),
    lines: (w) => [`${w.other.email} added as a collaborator by user ${w.account.email}`],
    webhooks: [],
    chart: [],
    audited: true,
    commands: 0,
  },
  {
    type: "feature.enabled",
    api: (w, s) => w.worker.api(`/apps/${s.app.name}/features/log-runtime-metrics`, { method: "PATCH", token: w.token, body: { enabled: true } }),
    verb: (ctx, _w, s) => setAppFeature(ctx, s.app, "log-runtime-metrics", true),
    lines: (w) => [`Enable log-runtime-metrics by user ${w.account.email}`],
    webhooks: [],
    chart: [],
    audited: true,
    commands: 0,
  },
  {
    type: "dyno.state_changed",
    running: true,
    // A host's heartbeat says the dyno crashed.
    api: (w, s) =>
      w.worker.api("/internal/hosts/heartbeat", {
        method: "POST",
        token: w.hostSecret,
        body: { url: recorderUrl(), capacity_mb: 4096, dynos: [crashed(s)], dropped_log_lines: 0 },
      }),
    verb: (ctx, w, s) => recordObservedDynos(ctx.db, w.hostId, [crashed(s)]),
    lines: () => [],
    webhooks: ["dyno"],
    chart: ["crash"],
    audited: false,
    commands: 0,
  },
];

const crashed = (s: Seeded) => ({ id: s.dynoId!, instance: s.instance!, state: "crashed" as const, port: null, exit_code: 3 });

// The host that records commands, and the webhook receiver; each keeps what it got by app.
const commands: Array<{ command: Command }> = [];
const hooks: Array<{ path: string; body: { resource: string; id: string } }> = [];
let recorder: http.Server;
let receiver: https.Server;
const recorderUrl = () => `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
const receiverPort = () => (receiver.address() as AddressInfo).port;

describe.skipIf(!platform().adminDatabaseUrl)("one event per change", { timeout: 60_000 }, () => {
  let own: OwnDatabase;
  const w = {} as World;

  beforeAll(async () => {
    recorder = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        commands.push({ command: JSON.parse(body) as Command });
        res.writeHead(202, { "content-type": "application/json" }).end("{}");
      });
    });
    const tls = path.join(platform().home, "tls");
    receiver = https.createServer({ cert: readFileSync(path.join(tls, "server.pem")), key: readFileSync(path.join(tls, "server.key")) }, (req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        hooks.push({ path: req.url ?? "", body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => recorder.listen(0, "127.0.0.1", resolve));
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    own = await createOwnDatabase("events");
    w.db = own.handle.db;
    w.worker = await startSecondWorker({
      DATABASE_URL: own.url,
      COMMAND_SIGNING_KEY: await throwawaySigningKey(),
      DRAIN_ALLOW_HOSTS: `127.0.0.1:${receiverPort()}`,
    });
    const stamp = Date.now().toString(36);
    const made = await w.db
      .insert(accounts)
      .values([
        { email: `events-${stamp}@example.com`, passwordHash: "x" },
        { email: `events-other-${stamp}@example.com`, passwordHash: "x" },
      ])
      .returning();
    w.account = made[0]!;
    w.other = made[1]!;
    w.token = generateToken();
    await w.db
      .insert(oauthAuthorizations)
      .values({ accountId: w.account.id, tokenHash: await hashToken(w.token), tokenPrefix: w.token.slice(0, 8), tokenSuffix: w.token.slice(-4) });
    const { host, secret } = await createHost(w.db, `events-${stamp}`);
    w.hostId = host.id;
    w.hostSecret = secret;
  }, 120_000);

  afterAll(async () => {
    await w.worker?.stop();
    await own?.drop();
    recorder?.close();
    receiver?.closeAllConnections();
    receiver?.close();
  });

  /** An app of its own for one test, with a webhook for every entity. */
  async function seed(c: Case): Promise<Seeded> {
    const db = w.db;
    // The recording host is up and has room (the Worker's fleet watch retires silent hosts).
    await db.update(hosts).set({ state: "up", capacityMb: 4096, url: recorderUrl(), lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, w.hostId));
    const name = `ev-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
    const [app] = await db.insert(apps).values({ name, ownerId: w.account.id, releaseSeq: 2 }).returning();
    const [slug] = await db
      .insert(slugs)
      .values({ appId: app!.id, blobKey: "slugs/none.tar.gz", size: 1, processTypes: { web: "node server.js" } })
      .returning();
    await db.insert(releases).values({ appId: app!.id, version: 1, description: "Initial release", userEmail: w.account.email });
    const [release] = await db
      .insert(releases)
      .values({ appId: app!.id, version: 2, description: "Deploy", userEmail: w.account.email, slugId: slug!.id })
      .returning();
    await db.insert(formations).values({ appId: app!.id, type: "web", quantity: c.running ? 1 : 0, size: "Standard-1X", command: "node server.js" });
    let dyno: { id: string; instance: string } | null = null;
    if (c.running) {
      dyno = (
        await db
          .insert(dynos)
          .values({
            appId: app!.id,
            releaseId: release!.id,
            name: "web.1",
            type: "web",
            command: "node server.js",
            size: "Standard-1X",
            hostId: w.hostId,
            state: "up",
          })
          .returning({ id: dynos.id, instance: dynos.instance })
      )[0]!;
    }
    const hook = await w.worker.api(`/apps/${name}/webhooks`, {
      method: "POST",
      token: w.token,
      body: { url: `https://127.0.0.1:${receiverPort()}/${name}`, include: ["api:app", "api:build", "api:formation", "api:release", "dyno"], level: "notify" },
    });
    expect(hook.status, hook.text).toBe(201);
    // Seeding left no events of its own (the webhook's is an audit row only).
    await waitFor("the seed's events dispatched", async () => !(await undispatched(app!.id)), 10_000, 50);
    return { app: app!, dynoId: dyno?.id ?? null, instance: dyno?.instance ?? null };
  }

  /** What the app's changes left in the database: events, audit rows of `type`, webhook events. */
  async function recorded(s: Seeded, type: EventType) {
    const count = async (q: Promise<unknown[]>) => (await q).length;
    return {
      events: await count(w.db.select({ id: domainEvents.id }).from(domainEvents).where(eq(domainEvents.appId, s.app.id))),
      audits: await count(
        w.db
          .select({ id: auditEvents.id })
          .from(auditEvents)
          .where(and(eq(auditEvents.appId, s.app.id), eq(auditEvents.action, type))),
      ),
      webhookEvents: await count(w.db.select({ id: webhookEvents.id }).from(webhookEvents).where(eq(webhookEvents.appId, s.app.id))),
    };
  }

  /** What reached the webhook receiver and the host for the app, without asking the Worker. */
  const delivered = (s: Seeded) => ({
    webhooks: hooks.filter((h) => h.path === `/${s.app.name}`).length,
    commands: commands.filter((c) => JSON.stringify(c.command).includes(s.app.id)).length,
  });

  /** Everything the app's changes led to outside the change itself. */
  async function effects(s: Seeded, type: EventType) {
    const session = await w.worker.api(`/apps/${s.app.name}/log-sessions`, {
      method: "POST",
      token: w.token,
      body: { lines: 1500, tail: false, source: "app" },
    });
    if (session.status !== 201) throw new Error(`log session: ${session.status} ${session.text}`);
    const text = await (await fetch(session.body.logplex_url, { dispatcher: tlsAgent() })).text();
    const lines = text
      .split("\n")
      .filter((l) => /^data: \S+ app\[api\]: /.test(l))
      .map((l) => l.replace(/^data: \S+ app\[api\]: /, ""));
    const metrics = await w.worker.api(`/apps/${s.app.name}/metrics?range=1h`, { token: w.token });
    const chart = (metrics.body.events as { kind: string }[]).map((e) => e.kind);
    const webhooks = hooks.filter((h) => h.path === `/${s.app.name}`).map((h) => h.body.resource);
    const audits = await w.db
      .select({ id: auditEvents.id })
      .from(auditEvents)
      .where(and(eq(auditEvents.appId, s.app.id), eq(auditEvents.action, type)));
    const sent = commands.filter((c) => JSON.stringify(c.command).includes(s.app.id)).length;
    return { lines, chart, webhooks, audits: audits.length, commands: sent };
  }

  const expected = (c: Case) => ({ lines: c.lines(w), chart: c.chart, webhooks: c.webhooks, audits: c.audited ? 1 : 0, commands: c.commands });

  /** Whether any of the app's events is still undispatched. */
  async function undispatched(appId: string): Promise<boolean> {
    const rows = await w.db
      .select({ id: domainEvents.id })
      .from(domainEvents)
      .where(and(eq(domainEvents.appId, appId), sql`${domainEvents.dispatchedAt} is null`));
    return rows.length > 0;
  }

  /** Waits until the app's events are dispatched and its webhooks have had their deliveries. */
  const effectsCarriedOut = (s: Seeded, c: Case) =>
    waitFor("the effects", async () => !(await undispatched(s.app.id)) && (await effects(s, c.type)).webhooks.length >= c.webhooks.length, 20_000, 50);

  /** A request to the Worker that changes nothing: its database connection dispatches what is pending. */
  const nextRequest = () => w.worker.api("/account", { token: w.token });

  /** A context like a request's, whose after-the-answer work is dropped: the instance dies once the change commits. */
  const dyingContext = (db: Database): ServiceContext => ({
    db,
    env: {} as Bindings,
    actor: { accountId: w.account.id, email: w.account.email, authorizationId: "", isDefaultKey: false } satisfies Actor,
    requestId: null,
    after: () => {},
  });

  for (const c of cases) {
    describe(c.type, () => {
      it("committed: its effects appear once, and a repeated dispatch repeats none", async () => {
        const s = await seed(c);
        const res = await c.api(w, s);
        expect(res.status, `${JSON.stringify(res)}\n${w.worker.output().slice(-3000)}`).toBeLessThan(300);
        await effectsCarriedOut(s, c);
        expect(await effects(s, c.type)).toEqual(expected(c));
        // A dispatcher that carried the effects out and died before marking them done: the next takes them again.
        await w.db.update(domainEvents).set({ dispatchedAt: null, claimedUntil: null }).where(eq(domainEvents.appId, s.app.id));
        await nextRequest();
        await waitFor("the repeated dispatch", async () => !(await undispatched(s.app.id)), 20_000, 50);
        const again = await effects(s, c.type);
        expect({ ...again, commands: c.commands }).toEqual(expected(c));
        expect(again.commands).toBeGreaterThanOrEqual(c.commands);
      });

      it("rolled back: none of its effects appears", async () => {
        const s = await seed(c);
        const before = await effects(s, c.type);
        await expect(
          w.db.transaction(async (tx) => {
            await c.verb(dyingContext(tx), w, s);
            throw new Error("rolled back");
          }),
        ).rejects.toThrow("rolled back");
        // Nothing of it was recorded, so there is nothing for any dispatcher to carry out.
        expect(await recorded(s, c.type)).toEqual({ events: 0, audits: 0, webhookEvents: 0 });
        await nextRequest();
        expect(await effects(s, c.type)).toEqual(before);
      });

      it("committed by an instance that died before dispatching: its effects appear after the next request", async () => {
        const s = await seed(c);
        await c.verb(dyingContext(w.db), w, s);
        // Recorded with the change (the audit row and webhook events are in its transaction);
        // nothing outside has happened, and nothing will until a Worker next runs.
        expect(await undispatched(s.app.id)).toBe(true);
        expect(await recorded(s, c.type)).toEqual({ events: 1, audits: c.audited ? 1 : 0, webhookEvents: c.webhooks.length });
        await new Promise((r) => setTimeout(r, 500));
        expect(delivered(s)).toEqual({ webhooks: 0, commands: 0 });
        await nextRequest();
        await effectsCarriedOut(s, c);
        expect(await effects(s, c.type)).toEqual(expected(c));
      });
    });
  }

  it("keeps dispatched events a week, and undispatched ones until they are dispatched", async () => {
    const now = new Date();
    const daysAgo = (d: number) => new Date(now.getTime() - d * 24 * 3600 * 1000);
    const appId = crypto.randomUUID();
    const made = await w.db
      .insert(domainEvents)
      .values([
        { type: "feature.enabled", appId, data: { name: "a" }, createdAt: daysAgo(8), dispatchedAt: daysAgo(8) },
        { type: "feature.enabled", appId, data: { name: "b" }, createdAt: daysAgo(8) },
        { type: "feature.enabled", appId, data: { name: "c" }, createdAt: daysAgo(6), dispatchedAt: daysAgo(6) },
      ])
      .returning({ id: domainEvents.id });
    // Undispatched, the middle one would be taken by the next dispatch: it is made to look claimed.
    await w.db.update(domainEvents).set({ claimedUntil: sql`now() + interval '1 hour'` }).where(eq(domainEvents.id, made[1]!.id));
    expect((await pruneEvents(w.db, now)).pruned).toBe(1);
    const left = await w.db.select({ id: domainEvents.id }).from(domainEvents).where(eq(domainEvents.appId, appId));
    expect(left.map((r) => r.id).sort()).toEqual([made[1]!.id, made[2]!.id].sort());
  });
});
