import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { api, platform, tlsAgent } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp, type TestAccount } from "../support/factories.ts";
import { ensurePgClient, PG_CLIENT_TIMEOUT_MS } from "../support/pg-client.ts";
import { destroyApp } from "../support/slugs.ts";
import { asTenant, provisionDatabase, scalar } from "./support.ts";

// PGBackups against another tenant: its backups listed, read, downloaded, deleted, cancelled
// or restored into one's own database; its database backed up; a download URL of one's own
// turned on another's backup; a restore from a URL of one's choosing (a fetch the platform
// would make). Defences: every transfer route finds the app through the caller's own apps,
// a restore's backup is looked up and checked against the caller's apps the same way, a
// download URL's token names one backup, and restores read only the platform's own dumps.
// A transfer's host side (its dump and its report) answers only the host it was given to
// (hostAuth, then assignedTransfer's lookup by that host).

afterAll(closeDb);
beforeAll(ensurePgClient, PG_CLIENT_TIMEOUT_MS);

/** Takes a backup through the data API and waits for it to finish; returns the transfer. */
async function backup(owner: TestAccount, app: string, addonId: string) {
  const started = await api(`/client/v11/databases/${addonId}/backups`, { method: "POST", token: owner.token });
  expect(started.status, started.text).toBe(201);
  return vi.waitFor(
    async () => {
      const t = await api(`/client/v11/apps/${app}/transfers/${started.body.uuid}`, { token: owner.token });
      expect(t.body.finished_at, t.text).toBeTruthy();
      expect(t.body.succeeded).toBe(true);
      return t.body as { uuid: string; num: number; to_url: string };
    },
    { timeout: 120_000, interval: 500 },
  );
}

describe("a tenant against another's backups", { timeout: 240_000 }, () => {
  it("can neither list, read, download, delete, cancel nor restore another tenant's backups, nor back up its database", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    const mine = await makeApp(attacker);
    try {
      const victimDb = await provisionDatabase(victim, theirs.name);
      const attackerDb = await provisionDatabase(attacker, mine.name);
      await asTenant(victimDb.url, "create table secrets (v text)", "insert into secrets values ('kept')");
      const taken = await backup(victim, theirs.name, victimDb.addon.id);
      const own = await backup(attacker, mine.name, attackerDb.addon.id);

      // The victim's app, by name or id: refused as any app one has no access to.
      for (const ref of [theirs.name, theirs.id]) {
        for (const [method, path] of [
          ["GET", `/client/v11/apps/${ref}/transfers`],
          ["GET", `/client/v11/apps/${ref}/transfers/${taken.num}?verbose=true`],
          ["GET", `/client/v11/apps/${ref}/transfers/${taken.uuid}`],
          ["POST", `/client/v11/apps/${ref}/transfers/${taken.num}/actions/public-url`],
          ["POST", `/client/v11/apps/${ref}/transfers/${taken.uuid}/actions/cancel`],
          ["DELETE", `/client/v11/apps/${ref}/transfers/${taken.num}`],
        ] as const) {
          const res = await api(path, { method, token: attacker.token });
          expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
          expect(res.text).not.toContain(taken.uuid.slice(0, 8));
        }
      }
      // The victim's backup through the attacker's own app: not there.
      for (const path of [
        `/client/v11/apps/${mine.name}/transfers/${taken.uuid}`,
        `/client/v11/apps/${mine.name}/transfers/${taken.uuid}/actions/public-url`,
      ]) {
        const res = await api(path, { method: path.endsWith("public-url") ? "POST" : "GET", token: attacker.token });
        expect(res.status, res.text).toBe(404);
      }
      // Backing up the victim's database, by id or name, is as for a database that does not exist.
      for (const ref of [victimDb.addon.id, victimDb.addon.name]) {
        const res = await api(`/client/v11/databases/${ref}/backups`, { method: "POST", token: attacker.token });
        expect(res.status, res.text).toBe(404);
      }
      // The victim's daily schedule: not listed, replaced or removed by the attacker.
      const schedule = await api(`/client/v11/databases/${victimDb.addon.id}/transfer-schedules`, {
        method: "POST",
        token: victim.token,
        body: { hour: "02", timezone: "Europe/Istanbul", schedule_name: "DATABASE_URL" },
      });
      expect(schedule.status, schedule.text).toBe(201);
      for (const ref of [victimDb.addon.id, victimDb.addon.name]) {
        for (const [method, path, body] of [
          ["GET", `/client/v11/databases/${ref}/transfer-schedules`, undefined],
          ["POST", `/client/v11/databases/${ref}/transfer-schedules`, { hour: "03", timezone: "UTC", schedule_name: "DATABASE_URL" }],
          ["DELETE", `/client/v11/databases/${ref}/transfer-schedules/${schedule.body.uuid}`, undefined],
        ] as const) {
          const res = await api(path, { method, token: attacker.token, body });
          expect(res.status, `${method} ${path}: ${res.text}`).toBe(404);
        }
      }
      // Nor through the attacker's own database, by the schedule's id.
      const viaMine = await api(`/client/v11/databases/${attackerDb.addon.id}/transfer-schedules/${schedule.body.uuid}`, {
        method: "DELETE",
        token: attacker.token,
      });
      expect(viaMine.status, viaMine.text).toBe(404);
      const still = await api(`/client/v11/databases/${victimDb.addon.id}/transfer-schedules`, { token: victim.token });
      expect(still.body).toEqual([expect.objectContaining({ uuid: schedule.body.uuid, hour: 2, timezone: "Europe/Istanbul" })]);

      // Restoring the victim's backup (its to_url) into the attacker's own database: not found, nothing runs.
      const restore = await api(`/client/v11/databases/${attackerDb.addon.id}/restores`, {
        method: "POST",
        token: attacker.token,
        body: { backup_url: taken.to_url },
      });
      expect(restore.status, restore.text).toBe(404);
      expect(restore.body).toEqual({ id: "not_found", message: "Couldn't find that backup.", resource: "backup" });
      // Nor from a URL of the attacker's choosing, which the platform would have to fetch.
      for (const backup_url of ["https://127.0.0.1:9/dump", `${taken.to_url}/../${own.uuid}`, `${own.to_url}?x=${taken.uuid}`, "file:///etc/shadow"]) {
        const res = await api(`/client/v11/databases/${attackerDb.addon.id}/restores`, { method: "POST", token: attacker.token, body: { backup_url } });
        expect(res.status, `${backup_url}: ${res.text}`).toBe(422);
        expect(res.body.id).toBe("invalid_params");
      }
      const mineNow = await api(`/client/v11/apps/${mine.name}/transfers`, { token: attacker.token });
      expect(mineNow.body.map((t: { num: number }) => t.num)).toEqual([own.num]);

      // A download URL of the attacker's own backup, its token put on the victim's backup: refused.
      const signed = await api(`/client/v11/apps/${mine.name}/transfers/${own.num}/actions/public-url`, { method: "POST", token: attacker.token });
      expect(signed.status, signed.text).toBe(200);
      const stolen = (signed.body.url as string).replace(own.uuid, taken.uuid);
      const res = await fetch(stolen, { dispatcher: tlsAgent() });
      expect(res.status).toBe(401);
      expect(await res.text()).not.toContain("PGDMP");
      // The attacker's own URL does download its own dump.
      const mineDump = await fetch(signed.body.url, { dispatcher: tlsAgent() });
      expect(mineDump.status).toBe(200);
      expect(
        Buffer.from(await mineDump.arrayBuffer())
          .subarray(0, 5)
          .toString(),
      ).toBe("PGDMP");

      // The victim's backup and database are as they were.
      const list = await api(`/client/v11/apps/${theirs.name}/transfers`, { token: victim.token });
      expect(list.body.map((t: { num: number; succeeded: boolean }) => [t.num, t.succeeded])).toEqual([[taken.num, true]]);
      expect(await scalar(victimDb.url, "select v from secrets")).toBe("kept");
    } finally {
      await destroyApp(victim.token, theirs.name);
      await destroyApp(attacker.token, mine.name);
    }
  });

  it("cannot use a transfer's host side: without the secret of the host it was given to, its dump is neither read, written nor reported on", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    try {
      const victimDb = await provisionDatabase(victim, theirs.name);
      await asTenant(victimDb.url, "create table secrets (v text)", "insert into secrets values ('kept')");
      const taken = await backup(victim, theirs.name, victimDb.addon.id);
      // A host of the attacker's making (or a stolen secret of another host's): registered, but not given this transfer.
      const { secret: otherHost } = await createHost(await db(), `attacker-host-${Date.now().toString(36)}`);
      const hostCall = (auth: string | null, method: string, suffix: string, body?: Buffer) =>
        fetch(`${platform().apiUrl}/internal/hosts/transfers/${taken.uuid}${suffix}`, {
          method,
          headers: { ...(auth ? { Authorization: `Bearer ${auth}` } : {}), ...(body ? { "Content-Type": "application/octet-stream" } : {}) },
          body,
          dispatcher: tlsAgent(),
        });
      const result = Buffer.from(JSON.stringify({ succeeded: false, logs: [], processed_bytes: 0, warnings: 0, error: "forged" }));
      for (const [auth, refused] of [
        [null, 401],
        [attacker.token, 401],
        [otherHost, 404],
      ] as const) {
        for (const [method, suffix, body] of [
          ["GET", "/dump", undefined],
          ["PUT", "/dump/parts/1", Buffer.from("PGDMP forged")],
          ["POST", "/result", result],
        ] as const) {
          const res = await hostCall(auth, method, suffix, body);
          const text = await res.text();
          expect(res.status, `${method} ${suffix} as ${auth ? auth.slice(0, 4) : "nobody"}: ${text}`).toBe(refused);
          expect(text).not.toContain("PGDMP");
        }
      }
      // The backup is as it was: succeeded, and its own download still the real dump.
      const after = await api(`/client/v11/apps/${theirs.name}/transfers/${taken.uuid}?verbose=true`, { token: victim.token });
      expect(after.body).toMatchObject({ succeeded: true });
      expect(JSON.stringify(after.body.logs)).not.toContain("forged");
      const signed = await api(`/client/v11/apps/${theirs.name}/transfers/${taken.num}/actions/public-url`, { method: "POST", token: victim.token });
      const dump = Buffer.from(await (await fetch(signed.body.url, { dispatcher: tlsAgent() })).arrayBuffer());
      expect(dump.subarray(0, 5).toString()).toBe("PGDMP");
      expect(dump.toString("latin1")).toContain("secrets");
    } finally {
      await destroyApp(victim.token, theirs.name);
    }
  });

  it("gets no other tenant's rows and no platform object into its own backup", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    const mine = await makeApp(attacker);
    try {
      const victimDb = await provisionDatabase(victim, theirs.name);
      const attackerDb = await provisionDatabase(attacker, mine.name);
      await asTenant(victimDb.url, "create table victim_secrets (v text)", "insert into victim_secrets values ('do-not-leak')");
      await asTenant(attackerDb.url, "create table mine (v text)", "insert into mine values ('my-row')");
      const own = await backup(attacker, mine.name, attackerDb.addon.id);
      const signed = await api(`/client/v11/apps/${mine.name}/transfers/${own.num}/actions/public-url`, { method: "POST", token: attacker.token });
      const dump = Buffer.from(await (await fetch(signed.body.url, { dispatcher: tlsAgent() })).arrayBuffer());
      expect(dump.subarray(0, 5).toString()).toBe("PGDMP");
      // pg_dump's custom format keeps COPY data uncompressed when the tool is built without
      // compression, and compressed otherwise; either way the TOC names what is in it.
      const text = dump.toString("latin1");
      expect(text).toContain("mine");
      expect(text).not.toContain("victim_secrets");
      // The platform's own schemas and extension are left out.
      expect(text).not.toContain("dynoplane_stats");
      expect(text).not.toContain("pg_stat_statements");
      expect(text).not.toContain("_heroku");
    } finally {
      await destroyApp(victim.token, theirs.name);
      await destroyApp(attacker.token, mine.name);
    }
  });

  it("can neither fork another tenant's database nor copy it into or out of one's own", async () => {
    const victim = await makeAccount();
    const attacker = await makeAccount();
    const theirs = await makeApp(victim);
    const mine = await makeApp(attacker);
    try {
      const victimDb = await provisionDatabase(victim, theirs.name);
      const attackerDb = await provisionDatabase(attacker, mine.name);
      await asTenant(victimDb.url, "create table secrets (v text)", "insert into secrets values ('kept')");
      // A fork names the victim's database by add-on name, by id, or through the victim's app.
      for (const fork of [victimDb.addon.name, victimDb.addon.id, `${theirs.name}::DATABASE`]) {
        const res = await api(`/apps/${mine.name}/addons`, {
          method: "POST",
          token: attacker.token,
          body: { plan: "heroku-postgresql:essential-0", config: { fork } },
        });
        expect(res.status, `${fork}: ${res.text}`).toBeGreaterThanOrEqual(403);
        expect(res.status).toBeLessThan(500);
        expect(res.body.id).toMatch(/^(not_found|forbidden)$/);
      }
      const addons = await api(`/apps/${mine.name}/addons`, { token: attacker.token });
      expect(addons.body.map((a: { id: string }) => a.id)).toEqual([attackerDb.addon.id]);

      // pg:copy from the victim's database (its URL is a secret the attacker might have learnt) into the attacker's: refused.
      const out = await api(`/client/v11/databases/${attackerDb.addon.id}/transfers`, {
        method: "POST",
        token: attacker.token,
        body: { from_url: victimDb.url, to_url: attackerDb.url },
      });
      expect(out.status, out.text).toBe(422);
      // Into the victim's database, by the victim's add-on or through the attacker's own path.
      for (const [path, body] of [
        [`/client/v11/databases/${victimDb.addon.id}/transfers`, { from_url: attackerDb.url, to_url: victimDb.url }],
        [`/client/v11/databases/${attackerDb.addon.id}/transfers`, { from_url: attackerDb.url, to_url: victimDb.url }],
      ] as const) {
        const res = await api(path, { method: "POST", token: attacker.token, body });
        expect([404, 422], `${path}: ${res.text}`).toContain(res.status);
      }
      const transfers = await api(`/client/v11/apps/${mine.name}/transfers`, { token: attacker.token });
      expect(transfers.body).toEqual([]);
      expect(await scalar(victimDb.url, "select v from secrets")).toBe("kept");
      expect(await scalar(attackerDb.url, "select count(*)::int from pg_tables where tablename = 'secrets'")).toBe(0);
    } finally {
      await destroyApp(victim.token, theirs.name);
      await destroyApp(attacker.token, mine.name);
    }
  });
});
