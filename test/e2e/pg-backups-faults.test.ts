import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Platform, startPlatform } from "../../src/local/platform.ts";
import { ensurePgClient, PG_CLIENT_TIMEOUT_MS } from "../support/pg-client.ts";
import { query } from "../support/sql.ts";

// A backup while the blob store refuses writes: the capture fails with that reason, and the
// database keeps serving. The store is this test's own platform's (its Worker's R2 files,
// on a small file system of their own, filled up), so that no other test's slugs or dumps
// are refused.

const exec = promisify(execFile);

describe.skipIf(process.getuid?.() !== 0)("a backup while the blob store refuses writes", { timeout: 240_000 }, () => {
  let home: string;
  let platform: Platform;
  let dispatcher: Agent;
  /** The Worker's R2 files: a tmpfs of this test's, mounted there before the platform starts. */
  let blobStore: string;
  let mounted = false;

  beforeAll(async () => {
    await ensurePgClient();
    home = mkdtempSync(path.join(os.tmpdir(), "dynoplane-blob-faults-"));
    chmodSync(home, 0o755); // the embedded Postgres runs as an unprivileged user
    blobStore = path.join(home, "worker", "v3", "r2");
    mkdirSync(blobStore, { recursive: true });
    await exec("mount", ["-t", "tmpfs", "-o", "size=32m,mode=0700", "dynoplane-test-blobs", blobStore]);
    mounted = true;
    platform = await startPlatform({ home, quiet: true, ephemeral: true, cron: [], python: { packages: "host" } });
    dispatcher = new Agent({ connect: { ca: readFileSync(platform.tls.caPath), lookup: (_h, _o, cb) => cb(null, [{ address: "127.0.0.1", family: 4 }]) } });
  }, PG_CLIENT_TIMEOUT_MS + 120_000);

  afterAll(async () => {
    await dispatcher?.close();
    await platform?.stop();
    if (mounted) await exec("umount", [blobStore]).catch(() => {});
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** Makes the Worker's blob store refuse writes as a full disk does: a file takes the rest of it. */
  const filler = () => path.join(blobStore, "filler");
  const refuseWrites = async () => {
    // dd ends with "No space left on device" once the file system is full.
    await exec("dd", ["if=/dev/zero", `of=${filler()}`, "bs=1M"]).catch((err: { stderr?: string }) => {
      if (!err.stderr?.includes("No space left")) throw err;
    });
  };
  const acceptWrites = () => rmSync(filler());

  const call = async (method: string, p: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${platform.apiUrl}${p}`, {
      method,
      dispatcher,
      headers: {
        Accept: "application/vnd.heroku+json; version=3",
        Authorization: `Bearer ${platform.firstAccount!.apiKey}`,
        "Content-Type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  /** Captures a backup and waits for it to end; its transfer, with its log lines. */
  const capture = async (app: string, addonId: string) => {
    const started = await call("POST", `/client/v11/databases/${addonId}/backups`);
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    return vi.waitFor(
      async () => {
        const t = await call("GET", `/client/v11/apps/${app}/transfers/${started.body.uuid}?verbose=true`);
        expect(t.body.finished_at).toBeTruthy();
        return t.body as { succeeded: boolean; to_url: string | null; logs: { message: string }[] };
      },
      { timeout: 120_000, interval: 250 },
    );
  };

  it("fails that capture with the store's refusal as its reason; the database keeps serving, and the next capture, with the store back, succeeds", async () => {
    const app = (await call("POST", "/apps", {})).body.name as string;
    const created = await call("POST", `/apps/${app}/addons`, { plan: "heroku-postgresql:essential-0" });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await vi.waitFor(async () => expect((await call("GET", `/apps/${app}/addons/${created.body.name}`)).body.state).toBe("provisioned"), {
      timeout: 60_000,
      interval: 250,
    });
    const url = (await call("GET", `/apps/${app}/config-vars`)).body.DATABASE_URL as string;
    await query(url, "create table orders (id int primary key, note text); insert into orders select g, 'order ' || g from generate_series(1, 200) g;");
    const first = await capture(app, created.body.id);
    expect(first.succeeded, first.logs.map((l) => l.message).join("\n")).toBe(true);

    await refuseWrites();
    const failed = await capture(app, created.body.id);
    expect(failed.succeeded).toBe(false);
    expect(failed.logs.map((l) => l.message).join("\n")).toMatch(/The blob store refused part 1 of the dump/);
    // The database serves on, its rows as they were.
    expect(await query<{ n: number }>(url, "select count(*)::int as n from orders")).toEqual([{ n: 200 }]);

    acceptWrites();
    const next = await capture(app, created.body.id);
    expect(next.succeeded, next.logs.map((l) => l.message).join("\n")).toBe(true);
    const listed = (await call("GET", `/client/v11/apps/${app}/transfers`)).body as { succeeded: boolean }[];
    expect(listed.map((t) => t.succeeded).sort()).toEqual([false, true, true]);
  });
});
