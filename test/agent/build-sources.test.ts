import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { appDir, build, cleanupBuildDirs, commit, pack, slugEntries, slugFile, workDir } from "./build-support.ts";
import { tempDir } from "./support.ts";

afterEach(cleanupBuildDirs);

const PROCFILE_APP = { Procfile: "web: ./serve.sh\n", "serve.sh": "#!/bin/sh\nexec sleep 1000\n" };

/** A buildpack that shows its ENV_DIR and CACHE_DIR at work, and declares a web default. */
const CUSTOM_BUILDPACK = {
  "bin/detect": "#!/bin/sh\necho Custom\n",
  "bin/compile": `#!/bin/sh
set -e
echo "-----> Custom compile"
echo "       GREETING=$(cat "$3/GREETING")"
if [ -f "$2/seen" ]; then echo "       cache: warm"; else echo "       cache: cold"; fi
touch "$2/seen"
echo built > "$1/built.txt"
`,
  "bin/release": "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: ./serve.sh --custom\\n'\n",
};

describe("build sources", () => {
  it("replays git packs (a thin one included), reuses the app's cache repository, and does not depend on it", async () => {
    const repoDir = path.join(tempDir("dynoplane-repo-"), "app");
    const packDir = tempDir("dynoplane-packs-");
    const big = Array.from({ length: 2_000 }, (_, i) => `line ${i} of a file large enough to be sent as a delta`).join("\n");
    const a = commit(repoDir, { ...PROCFILE_APP, "version.txt": "one\n", "big.txt": big });
    const first = pack(repoDir, [a], path.join(packDir, "0.pack"));
    const b = commit(repoDir, { "version.txt": "two\n", "added.txt": "new\n", "big.txt": `${big}\none more line` });
    const second = pack(repoDir, [b, `^${a}`], path.join(packDir, "1.pack"), true);
    // The second pack is thin: alone, its deltas cannot be resolved.
    const lone = tempDir("dynoplane-lone-");
    execFileSync("git", ["init", "--quiet", "--bare", lone]);
    expect(() => execFileSync("git", ["index-pack", "--stdin"], { cwd: lone, input: readFileSync(second), stdio: ["pipe", "ignore", "ignore"] })).toThrow();
    rmSync(lone, { recursive: true, force: true });
    const work = workDir();
    const spec = { kind: "git" as const, app_id: "6a2f4c2e-8f5b-4c8e-9d0a-3b1e2f4a5c6d" };

    const v1 = await build(undefined, { ...spec, commit: a }, { work, packs: [first] });
    expect(v1.result.status).toBe("succeeded");
    // git ran on the tenant's packs as the app's own uid, never as root.
    const objects = statSync(path.join(work, "git-cache", `${spec.app_id}.git`, "objects"));
    expect(objects.uid).not.toBe(0);
    expect(slugFile(v1.record.slug!.file, "./app/version.txt")).toBe("one\n");
    expect(slugEntries(v1.record.slug!.file)).not.toContain("./app/.git/");

    const v2 = await build(undefined, { ...spec, commit: b }, { work, packs: [first, second] });
    expect(v2.result.status).toBe("succeeded");
    expect(slugFile(v2.record.slug!.file, "./app/version.txt")).toBe("two\n");
    expect(slugFile(v2.record.slug!.file, "./app/added.txt")).toBe("new\n");
    expect(slugFile(v2.record.slug!.file, "./app/big.txt")).toBe(`${big}\none more line`);
    const cache = path.join(work, "git-cache", `${spec.app_id}.git`);
    expect(readdirSync(path.join(cache, "objects", "pack")).filter((n) => n.endsWith(".pack"))).toHaveLength(2);
    // What `git clone` is served from: one self-contained pack of the commit and its history, with its index.
    const repo = v2.record.repository!;
    expect(repo.name).toMatch(/^pack-[0-9a-f]{40}$/);
    const clone = tempDir("dynoplane-clone-");
    execFileSync("git", ["init", "--quiet", "--bare", clone]);
    for (const ext of ["pack", "idx"]) copyFileSync(repo[ext as "pack" | "idx"], path.join(clone, "objects", "pack", `${repo.name}.${ext}`));
    const inClone = (...args: string[]) => execFileSync("git", args, { cwd: clone, encoding: "utf8" }).trim();
    expect(inClone("rev-list", b).split("\n")).toEqual([b, a]);
    expect(inClone("show", `${b}:big.txt`)).toBe(`${big}\none more line`);
    expect(inClone("fsck", "--no-progress", "--no-dangling", b)).toBe("");
    rmSync(clone, { recursive: true, force: true });

    // A damaged cache (its packs gone, its record intact) must not matter.
    rmSync(path.join(cache, "objects", "pack"), { recursive: true, force: true });
    const v3 = await build(undefined, { ...spec, commit: b }, { work, packs: [first, second] });
    expect(v3.result.status).toBe("succeeded");
    expect(slugFile(v3.record.slug!.file, "./app/version.txt")).toBe("two\n");

    const missing = await build(undefined, { ...spec, commit: "0".repeat(40) }, { work, packs: [first] });
    expect(missing.result).toMatchObject({ status: "failed", error: `commit ${"0".repeat(40)} is not in the pushed packs` });
    rmSync(path.dirname(repoDir), { recursive: true, force: true });
    rmSync(packDir, { recursive: true, force: true });
  });

  it("unpacks a tarball, stepping into its single top-level directory", async () => {
    const src = appDir({ "myapp-main/Procfile": "web: ./serve.sh\n", "myapp-main/serve.sh": "#!/bin/sh\n", "myapp-main/.hidden": "x" });
    const tarball = path.join(src, "..", `${path.basename(src)}.tgz`);
    execFileSync("tar", ["-czf", tarball, "-C", src, "myapp-main"]);
    const { result, record } = await build({ tarball });
    rmSync(tarball, { force: true });
    expect(result).toMatchObject({ status: "succeeded", process_types: { web: "./serve.sh" } });
    expect(slugEntries(record.slug!.file)).toEqual(expect.arrayContaining(["./app/Procfile", "./app/serve.sh", "./app/.hidden"]));
  });

  it("refuses a tarball with a member outside the app", async () => {
    const src = appDir({ "inner/Procfile": "web: x\n" });
    const tarball = path.join(src, "..", `${path.basename(src)}-evil.tgz`);
    execFileSync("tar", ["-czf", tarball, "-C", path.join(src, "inner"), "Procfile", "--transform", "s,^,../,"]);
    const { result } = await build({ tarball });
    rmSync(tarball, { force: true });
    expect(result.status).toBe("failed");
    expect(result.error).toBe("the source archive was refused: '..' in path: ../Procfile");
  });
});

describe("custom buildpacks", () => {
  it("clones a file:// git buildpack and runs it with ENV_DIR and a cache that lives on", async () => {
    const bpRepo = path.join(tempDir("dynoplane-bp-"), "bp");
    commit(bpRepo, CUSTOM_BUILDPACK);
    const work = workDir();
    const over = { app_id: "0e4b8f5c-1d2a-4b3c-8d9e-0f1a2b3c4d5e", buildpacks: [{ url: `file://${bpRepo}` }], env: { GREETING: "merhaba" } };
    const first = await build({ dir: appDir(PROCFILE_APP) }, over, { work });
    expect(first.result, first.lines.join("\n")).toMatchObject({
      status: "succeeded",
      buildpack_provided_description: "Custom",
      process_types: { web: "./serve.sh" },
    });
    expect(first.lines).toEqual(
      expect.arrayContaining([
        `-----> Using buildpack: file://${bpRepo}`,
        "-----> Custom app detected",
        "       GREETING=merhaba",
        "       cache: cold",
        "       Procfile declares types -> web",
      ]),
    );
    expect(slugFile(first.record.slug!.file, "./app/built.txt")).toBe("built\n");

    const second = await build({ dir: appDir({ "serve.sh": "#!/bin/sh\n" }) }, over, { work });
    expect(second.lines).toContain("       cache: warm");
    expect(second.result.process_types).toEqual({ web: "./serve.sh --custom" });
    rmSync(path.dirname(bpRepo), { recursive: true, force: true });
  });

  it("runs a buildpack directory on this host in place, after the built-in ones it is listed with", async () => {
    const bpDir = appDir(CUSTOM_BUILDPACK, "dynoplane-bpdir-");
    const { result, lines } = await build(
      { dir: appDir({ ...PROCFILE_APP, "requirements.txt": "flask\n" }) },
      { buildpacks: [{ url: "heroku/python" }, { url: bpDir }], env: { GREETING: "hi" } },
    );
    expect(result).toMatchObject({ status: "succeeded", buildpack_provided_description: "Custom" });
    expect(lines).toEqual(
      expect.arrayContaining([
        "-----> Using buildpacks:",
        "       1. heroku/python",
        `       2. ${bpDir}`,
        "-----> Python app detected",
        "-----> Custom app detected",
      ]),
    );
  });

  it.each<[string, string, RegExp]>([
    ["a buildpack that cannot be cloned", "file:///nonexistent/buildpack.git", /^Failed to download buildpack file:\/\/\/nonexistent\/buildpack\.git: /],
    [
      "an unknown built-in",
      "heroku/ruby",
      /^heroku\/ruby is not available on this host; the built-in buildpacks are heroku\/python, heroku\/nodejs, heroku\/procfile$/,
    ],
    ["a built-in that does not apply", "heroku/nodejs", /^App not compatible with buildpack: heroku\/nodejs$/],
  ])("fails clearly on %s", async (_name, url, error) => {
    const { result } = await build({ dir: appDir(PROCFILE_APP) }, { buildpacks: [{ url }] });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(error);
  });
});

describe("build limits", () => {
  it("refuses a slug over max_slug_bytes", async () => {
    const dir = appDir(PROCFILE_APP);
    writeFileSync(path.join(dir, "random.bin"), randomBytes(3 * 1024 * 1024)); // incompressible
    const { result, record } = await build({ dir }, { max_slug_bytes: 1024 * 1024 });
    expect(result).toMatchObject({ status: "failed", slug_id: null, error: "Compiled slug size is too large (max is 1.0M)" });
    expect(record.slug).toBeUndefined();
  });

  it("stops a build at its time limit and leaves nothing running", async () => {
    // Unique durations make the sleeps findable in the process list afterwards.
    const marker = `${process.pid}${Date.now() % 100_000}`;
    const bpDir = appDir(
      { "bin/detect": "#!/bin/sh\necho Slow\n", "bin/compile": `#!/bin/sh\necho "-----> Working"\nsleep 60.${marker} &\nexec sleep 61.${marker}\n` },
      "dynoplane-slowbp-",
    );
    const work = workDir();
    const started = Date.now();
    const { result, lines } = await build({ dir: appDir(PROCFILE_APP) }, { buildpacks: [{ url: bpDir }], timeout_s: 2 }, { work });
    // Stopped by the limit, not by the buildpack finishing its minute-long sleep.
    expect(Date.now() - started).toBeLessThan(45_000);
    expect(result).toMatchObject({ status: "failed", error: "Build timed out: it ran longer than the limit of 2 seconds" });
    expect(lines).toContain("-----> Working");
    const leftover = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(marker));
    expect(leftover).toEqual([]);
    expect(existsSync(path.join(work, "builds"))).toBe(true);
    expect(readdirSync(path.join(work, "builds"))).toEqual([]);
  });

  it("is cancelled by its signal (the agent stopping)", async () => {
    const bpDir = appDir({ "bin/compile": "#!/bin/sh\nexec sleep 60\n" }, "dynoplane-stuckbp-");
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stopping")), 500);
    const { result, startedAt, endedAt } = await build({ dir: appDir(PROCFILE_APP) }, { buildpacks: [{ url: bpDir }] }, { signal: controller.signal });
    expect(result).toMatchObject({ status: "failed", error: "The build failed on the host: stopping" });
    expect(endedAt - startedAt).toBeLessThan(45_000);
  });
});
