import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builds, gitPacks, releases } from "../../src/db/schema/index.ts";
import { platform } from "../support/api.ts";
import { closeDb, db, makeAccount, makeApp } from "../support/factories.ts";
import { gitEnv, makeRepo, runGit } from "../support/git.ts";
import { startSecondWorker, type SecondWorker } from "../support/second-worker.ts";

// Pushes to a Worker configured with a 1 MB push limit and a 2 s build time limit.

afterAll(closeDb);

const stateOf = async (appId: string) => {
  const d = await db();
  return {
    packs: await d.select().from(gitPacks).where(eq(gitPacks.appId, appId)),
    builds: await d.select().from(builds).where(eq(builds.appId, appId)),
    releases: (await d.select().from(releases).where(eq(releases.appId, appId))).map((r) => r.version),
  };
};

describe("a Worker with SOURCE_MAX_MB=1 and BUILD_TIMEOUT_S=2", () => {
  let worker: SecondWorker;
  beforeAll(async () => {
    const signingKey = readFileSync(path.join(platform().home, "signing-key.jwk"), "utf8").trim();
    worker = await startSecondWorker({ SOURCE_MAX_MB: "1", BUILD_TIMEOUT_S: "2", COMMAND_SIGNING_KEY: signingKey });
  });
  afterAll(() => worker?.stop());

  const remote = (app: string, token: string) => `https://heroku:${token}@localhost:${worker.port}/${app}.git`;

  it("refuses a push over the limit (git's probe, then a chunked body) with a clear error and stores nothing", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    // Random bytes do not compress: the pack is about 3 MB, so git probes first and streams it chunked.
    const { dir, home } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n", "blob.bin": randomBytes(3 * 1024 * 1024).toString("base64") });
    const res = await runGit(["push", remote(app.name, owner.token), "main"], { cwd: dir, env: gitEnv(home) });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain("remote:  !     Push rejected: the push is larger than 1 MB.");
    expect(res.stderr).toContain("error: remote unpack failed: the push is larger than 1 MB");
    expect(res.stderr).toContain(" ! [remote rejected] main -> main (unpacker error)");
    expect(await stateOf(app.id)).toEqual({ packs: [], builds: [], releases: [1] });
  });

  it("ends a push whose build host never reports back here once the time limit has passed", async () => {
    const owner = await makeAccount();
    const app = await makeApp(owner);
    const { dir, home } = makeRepo({ Procfile: "web: python3 -m http.server $PORT\n" });
    // The host agent answers to the platform's own control plane, never to this Worker.
    const started = Date.now();
    const res = await runGit(["push", remote(app.name, owner.token), "main"], { cwd: dir, env: gitEnv(home), timeoutMs: 40_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(res.stderr).toContain("remote: -----> Building on the Heroku-24 stack");
    expect(res.stderr).toContain(" ! [remote rejected] main -> main (build failed)");
    const state = await stateOf(app.id);
    expect(state.builds.map((b) => b.status)).toEqual(["failed"]);
    expect(state.packs.map((p) => p.accepted)).toEqual([false]);
    expect(state.releases).toEqual([1]);
  }, 60_000);
});
