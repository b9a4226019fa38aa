import http from "node:http";
import type { AddressInfo } from "node:net";
import { eq } from "drizzle-orm";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builds } from "../../src/db/schema/index.ts";
import { createAccount } from "../../src/services/access/accounts.ts";
import { createAuthorization } from "../../src/services/access/authorizations.ts";
import { createHost } from "../../src/services/fleet/hosts.ts";
import { platform, tlsAgent } from "../support/api.ts";
import { createOwnDatabase, type OwnDatabase, throwawaySigningKey } from "../support/own-database.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";
import { waitFor } from "../support/slugs.ts";
import { tarball } from "../support/sources.ts";

// A build whose host takes it and never reports: the build channel's time limit fails it,
// through the same verb as a build its host reports failed, so it leaves the same traces.
// A Worker of its own (a 1 s build limit), on a database of its own, with a host that
// accepts every command and does nothing.

describe.skipIf(!platform().adminDatabaseUrl)("a build that outlives its time limit", () => {
  let own: OwnDatabase;
  let worker: SecondWorker;
  let silentHost: http.Server;
  const commands: string[] = [];

  beforeAll(async () => {
    silentHost = http.createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        commands.push(`${req.method} ${req.url}`);
        res.writeHead(202, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => silentHost.listen(0, "127.0.0.1", resolve));
    own = await createOwnDatabase("buildtimeout");
    worker = await startSecondWorker({ DATABASE_URL: own.url, COMMAND_SIGNING_KEY: await throwawaySigningKey(), BUILD_TIMEOUT_S: "1" });
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await own?.drop();
    silentHost?.close();
  });

  it("fails it as a reported failure would: status, output line, kept output and the app's Build failed event", async () => {
    const { secret } = await createHost(own.handle.db, "silent");
    const hostUrl = `http://127.0.0.1:${(silentHost.address() as AddressInfo).port}`;
    const beat = await worker.api("/internal/hosts/heartbeat", {
      method: "POST",
      headers: { Authorization: `Bearer ${secret}` },
      body: { url: hostUrl, capacity_mb: 4096, dynos: [], dropped_log_lines: 0 },
    });
    expect(beat.status, beat.text).toBe(200);

    const email = `timeout-${Date.now()}@example.com`;
    const account = await createAccount(own.handle.db, { email, password: "a long enough password" });
    const { token } = await createAuthorization(own.handle.db, account.id, { description: "test" }, { email });
    const app = await worker.api("/apps", { method: "POST", token, body: {} });
    expect(app.status, app.text).toBe(201);
    const sources = await worker.api("/sources", { method: "POST", token });
    const put = await fetch(sources.body.source_blob.put_url, {
      method: "PUT",
      body: tarball({ Procfile: "web: python3 -m http.server $PORT\n" }),
      dispatcher: tlsAgent(),
    });
    expect(put.status).toBe(200);
    const build = await worker.api(`/apps/${app.body.name}/builds`, {
      method: "POST",
      token,
      body: { source_blob: { url: sources.body.source_blob.get_url } },
    });
    expect(build.status, build.text).toBe(201);
    expect(build.body.status).toBe("pending");
    await waitFor("the host to be sent the build", () => commands.some((c) => c === "POST /commands"), 10_000, 100);

    // Nothing reports: the limit (1 s, and as long again in grace) ends it.
    const read = () => worker.api(`/apps/${app.body.name}/builds/${build.body.id}`, { token });
    await waitFor("the build to fail", async () => (await read()).body.status === "failed", 30_000, 250);

    const output = await fetch(build.body.output_stream_url, { dispatcher: tlsAgent() });
    const text = await output.text();
    expect(text).toContain(" !     The build did not finish in time.");
    const log = await worker.api(`/apps/${app.body.name}/log-sessions`, { method: "POST", token, body: { lines: 100 } });
    const lines = await (await fetch(log.body.logplex_url, { dispatcher: tlsAgent() })).text();
    expect(lines).toMatch(/app\[api\]: Build failed/);
    // The output is kept in Postgres too, for when the channel has forgotten it.
    const [row] = await own.handle.db.select({ output: builds.output, error: builds.error }).from(builds).where(eq(builds.id, build.body.id));
    expect(row!.output).toContain(" !     The build did not finish in time.");
    expect(row!.error).toBe("The build did not finish in time.");
  }, 90_000);
});
