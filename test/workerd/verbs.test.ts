import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { eq, sql } from "drizzle-orm";
import { decodeJwt } from "jose";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formations, hosts, releases, slugs } from "../../src/db/schema/index.ts";
import type { Bindings } from "../../src/env.ts";
import type { Command } from "../../src/protocol/host.ts";
import { platformContext } from "../../src/services/context.ts";
import { updateFormation } from "../../src/services/dynos/formation.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { platform } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, seedApp, throwawaySigningKey } from "../support/own-database.ts";
import { waitFor } from "../support/slugs.ts";

// A verb called outside any handler, as a scheduled job calls it: with a platform context
// (no request, no actor), it must still tell the hosts and write the app's log line. The
// Worker's own Durable Objects run in workerd (Miniflare, from the platform's bundle); the
// database is one of its own; the host is a server that records the commands it is sent.

describe.skipIf(!platform().adminDatabaseUrl)("a verb called by a scheduled job", () => {
  let own: OwnDatabase;
  let mf: Miniflare;
  let host: http.Server;
  let key: string;
  const received: { command: Command; token: string }[] = [];

  beforeAll(async () => {
    host = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        received.push({ command: JSON.parse(body) as Command, token: String(req.headers.authorization).replace(/^Bearer /, "") });
        res.writeHead(202, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
    own = await createOwnDatabase("verbs");
    key = await throwawaySigningKey();
    mf = new Miniflare({
      modules: true,
      scriptPath: path.join(platform().home, "worker", "bundle", "index.js"),
      modulesRoot: path.join(platform().home, "worker", "bundle"),
      compatibilityDate: "2026-04-01",
      compatibilityFlags: ["nodejs_compat", "enable_request_signal"],
      durableObjects: { LOG_CHANNEL: { className: "LogChannel", useSQLite: true } },
      cf: false,
    });
    await mf.ready;
  }, 120_000);

  afterAll(async () => {
    await mf?.dispose();
    await own?.drop();
    host?.close();
  });

  it("scales: the host is sent the new dynos and the app's log says who scaled it", async () => {
    const db = own.handle.db;
    const { account, app } = await seedApp(db, "job");
    const [slug] = await db
      .insert(slugs)
      .values({ appId: app!.id, blobKey: "slugs/none.tar.gz", size: 1, processTypes: { web: "node server.js" } })
      .returning();
    await db.insert(releases).values({ appId: app!.id, version: 1, description: "Deploy", userEmail: account!.email, slugId: slug!.id });
    await db.insert(formations).values({ appId: app!.id, type: "web", quantity: 0, size: "Standard-1X", command: "node server.js" });
    const { host: row } = await createHost(db, "recorder");
    const url = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
    await db.update(hosts).set({ state: "up", capacityMb: 4096, url, lastHeartbeatAt: sql`now()` }).where(eq(hosts.id, row.id));

    const env = {
      DATABASE_URL: own.url,
      COMMAND_SIGNING_KEY: key,
      BOOT_TIMEOUT_S: "60",
      LOG_CHANNEL: await mf.getDurableObjectNamespace("LOG_CHANNEL"),
    } as unknown as Bindings;
    const job = platformContext(db, env);
    const { summary } = await updateFormation(job, app!, [{ type: "web", quantity: 2 }]);
    await job.settle();
    expect(summary).toBe("web@2:Standard-1X");

    // The hosts were told at once, with tokens for them, signed for commands.
    await waitFor("two start commands", () => received.filter((r) => r.command.op === "start").length === 2, 10_000, 50);
    const starts = received.filter((r) => r.command.op === "start");
    expect(starts.map((r) => (r.command as Extract<Command, { op: "start" }>).dyno.name).sort()).toEqual(["web.1", "web.2"]);
    for (const { token } of starts) expect(decodeJwt(token)).toMatchObject({ aud: row.id, purpose: "command", iss: "dynoplane" });

    // And the app's log has the line, in Heroku's words, naming the platform as the actor.
    const channel = env.LOG_CHANNEL.get(env.LOG_CHANNEL.idFromName(app!.id));
    const lines = (await channel.recent({ limit: 10 })) as { dyno: string; text: string }[];
    expect(lines.map((l) => [l.dyno, l.text])).toContainEqual(["api", "Scaled to web@2:Standard-1X by dynoplane"]);
  }, 60_000);
});
