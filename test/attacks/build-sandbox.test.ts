import { execFileSync } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { symlinkSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { appUser, ensureDynoUser } from "../../src/agent/dyno-user.ts";
import { sandboxProblems } from "../../src/agent/sandbox/index.ts";
import { appDir, build, cleanupBuildDirs, slugEntries } from "../agent/build-support.ts";

// Attacks from a build: another app's files through a shared uid, daemons that outlive the
// build, slugs that unpack past their limit or link out of the app. Defences: a uid per app,
// a PID namespace per build step, and the slug's tar check (src/lib/tar-check.ts).

afterEach(cleanupBuildDirs);

const PROCFILE_APP = { Procfile: "web: ./serve.sh\n", "serve.sh": "#!/bin/sh\nexec sleep 1000\n" };
const hostProcesses = (marker: string) =>
  execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(marker) && !l.includes("ps -eo"));

/** A buildpack on this host whose compile step runs `script` (as a tenant's heroku-postbuild would). */
const buildpack = (script: string) => appDir({ "bin/detect": "#!/bin/sh\necho Hostile\n", "bin/compile": `#!/bin/sh\n${script}\n` }, "dynoplane-hostilebp-");

// A tenant's build, as a hostile tenant would write it: nothing of it may get out or live on.
describe.skipIf(sandboxProblems().length > 0)("build sandbox, against a hostile tenant", () => {
  const servers: net.Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it("runs each app's build as that app's own uid, seeing nothing of the host", async () => {
    const server = net.createServer((s) => s.end("host service\n"));
    servers.push(server);
    const port = await new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
    const bp = buildpack(
      `echo "uid=$(id -u)"; test -e ${JSON.stringify(path.join(process.cwd(), ".dynoplane"))} -o -e ${JSON.stringify(os.homedir())} && echo "sees the platform" || echo "no platform"; node -e 'const s=require("net").connect(${port},"127.0.0.1");s.on("connect",()=>{console.log("reached the host");process.exit(0)});s.on("error",e=>{console.log("host: "+e.code);process.exit(0)})'`,
    );
    const [one, two] = [randomUUID(), randomUUID()];
    const a = await build({ dir: appDir(PROCFILE_APP) }, { app_id: one, buildpacks: [{ url: bp }] });
    const b = await build({ dir: appDir(PROCFILE_APP) }, { app_id: two, buildpacks: [{ url: bp }] });
    const base = await ensureDynoUser();
    expect(a.result.status).toBe("succeeded");
    expect(a.lines, a.lines.join("\n")).toEqual(expect.arrayContaining([`uid=${appUser(base, one)!.uid}`, "no platform", "host: ECONNREFUSED"]));
    expect(b.lines).toContain(`uid=${appUser(base, two)!.uid}`);
    expect(appUser(base, one)!.uid).not.toBe(appUser(base, two)!.uid);
  });

  it("leaves nothing of a build running: a detached daemon cannot reach the next build", async () => {
    const marker = `${randomInt(1e6, 9e6)}`;
    // The daemon waits for the next build, then tries to read its env and plant a file in its slug.
    const daemon = `setsid sh -c 'sleep 3.${marker}; for d in /tmp/dynoplane-agent-*/builds/*; do cat "$d"/env/* > /tmp/stolen-${marker}; touch "$d"/app/planted; done; sleep 300.${marker}' > /dev/null 2>&1 < /dev/null &\necho started daemon`;
    const first = await build({ dir: appDir(PROCFILE_APP) }, { buildpacks: [{ url: buildpack(daemon) }] });
    expect(first.lines).toContain("started daemon");
    expect(hostProcesses(marker)).toEqual([]);
    const second = await build({ dir: appDir({ ...PROCFILE_APP, "slow.sh": "sleep 4\n" }) }, { env: { ALICE_SECRET: "s3cret" } });
    expect(second.result.status).toBe("succeeded");
    expect(slugEntries(second.record.slug!.file)).not.toContain("./app/planted");
    expect(hostProcesses(marker)).toEqual([]);
  });

  it("refuses a slug that unpacks past the limit, as the Slug API does", async () => {
    const { result } = await build({ dir: appDir({ ...PROCFILE_APP, "zeros.bin": "\0".repeat(3 * 1024 * 1024) }) }, {}, { maxUnpackedBytes: 1024 * 1024 });
    expect(result).toMatchObject({ status: "failed", slug_id: null, error: "Compiled slug is too large: it unpacks to more than 1 MB" });
  });

  it("refuses a slug with a link out of the app, as the Slug API does", async () => {
    const dir = appDir(PROCFILE_APP);
    symlinkSync("/etc/passwd", path.join(dir, "passwd"));
    const { result } = await build({ dir });
    expect(result).toMatchObject({
      status: "failed",
      slug_id: null,
      error: 'The compiled slug was refused: symlink "./app/passwd" points to the absolute path "/etc/passwd"',
    });
  });
});
