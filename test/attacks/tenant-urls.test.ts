import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateToken, hashToken } from "../../src/auth/tokens.ts";
import { oauthAuthorizations } from "../../src/db/schema/index.ts";
import { createOwnDatabase, type OwnDatabase, seedApp, throwawaySigningKey } from "../support/own-database.ts";
import { type SecondWorker, startSecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";

const root = process.getuid?.() === 0;

/** A TCP listener on 127.0.0.1 that counts every connection made to it (a drain or webhook reaching it would connect first). */
async function listener(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = net.createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe.runIf(root)("tenant-named URLs whose names resolve to this machine", () => {
  const NAME = "inside.dynoplane-attacks.test";
  let worker: SecondWorker;
  let dir: string;
  // A database of its own: only this Worker (the one whose resolver knows the name) dispatches its events.
  let own: OwnDatabase;
  beforeAll(async () => {
    own = await createOwnDatabase("tenant_urls");
    // The Worker's resolver of its own: workerd runs in a mount namespace whose /etc/hosts
    // says the name is 127.0.0.1 (nothing outside that process sees it).
    dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-resolver-"));
    const hosts = path.join(dir, "hosts");
    writeFileSync(hosts, `127.0.0.1 localhost\n127.0.0.1 ${NAME}\n`);
    worker = await startSecondWorker(
      { DATABASE_URL: own.url, COMMAND_SIGNING_KEY: await throwawaySigningKey(), CLIENT_ADDRESS_HEADER: "", DRAIN_ALLOW_HOSTS: "" },
      { launcher: ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", `mount --bind ${hosts} /etc/hosts && exec "$@"`, "sh"] },
    );
  }, 120_000);
  afterAll(async () => {
    await worker?.stop();
    await own?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("delivers no drain or webhook there, and records the failure without saying what answered", async () => {
    const { account, app } = await seedApp(own.handle.db, "urls");
    const owner = { token: generateToken() };
    await own.handle.db
      .insert(oauthAuthorizations)
      .values({ accountId: account.id, tokenHash: await hashToken(owner.token), tokenPrefix: owner.token.slice(0, 8), tokenSuffix: owner.token.slice(-4) });
    const https = await listener();
    const syslog = await listener();
    try {
      const as = { token: owner.token };
      for (const url of [`https://${NAME}:${https.port}/drain`, `syslog://${NAME}:${syslog.port}`]) {
        const drain = await worker.api(`/apps/${app.name}/log-drains`, { ...as, method: "POST", body: { url } });
        expect(drain.status, drain.text).toBe(201);
      }
      const hook = await worker.api(`/apps/${app.name}/webhooks`, {
        ...as,
        method: "POST",
        body: { include: ["api:release"], level: "notify", url: `https://${NAME}:${https.port}/hook` },
      });
      expect(hook.status, hook.text).toBe(201);
      // Lines for the drains and a release for the webhook, through this Worker.
      for (let i = 0; i < 3; i++) {
        const set = await worker.api(`/apps/${app.name}/config-vars`, { ...as, method: "PATCH", body: { [`TRY_${i}`]: "1" } });
        expect(set.status, set.text).toBe(200);
      }
      const delivery = await waitFor(
        "the webhook's attempt",
        async () => {
          const list = (await worker.api(`/apps/${app.name}/webhook-deliveries`, as)).body as Array<{ status: string; last_attempt: unknown }>;
          return list.find((d) => d.status === "failed" && d.last_attempt);
        },
        30_000,
        250,
      );
      // Defence: PUBLIC_NETWORK (workerd's network with allow = ["public"]) judges the address at connect time.
      expect(delivery.last_attempt).toMatchObject({ code: null, error_class: "ConnectionFailed", status: "failed" });
      const drains = await waitFor(
        "both drains to have tried",
        async () => {
          const list = (await worker.api(`/apps/${app.name}/log-drains`, as)).body as Array<{ url: string }>;
          return list.length === 2 ? list : undefined;
        },
        10_000,
        250,
      );
      expect(drains).toHaveLength(2);
      // Give the drains' first sends and a retry time to happen.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(https.connections()).toBe(0);
      expect(syslog.connections()).toBe(0);
    } finally {
      await https.close();
      await syslog.close();
    }
  });
});
