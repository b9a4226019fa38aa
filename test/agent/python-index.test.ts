import { randomUUID } from "node:crypto";
import { readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { PythonBuildSettings } from "../../src/agent/builder/python.ts";
import { SandboxHost } from "../../src/agent/sandbox/index.ts";
import { createSupervisor } from "../../src/agent/supervisor.ts";
import type { LogLine } from "../../src/protocol/host.ts";
import {
  buildRuntime,
  buildWheels,
  hostWheels,
  type PackageIndex,
  sha256File,
  startPackageIndex,
  type TestDistribution,
} from "../../src/bench/package-index.ts";
import { appDir, build, cleanupBuildDirs, slugEntries, slugFile, workDir } from "./build-support.ts";
import { at, desiredDyno, get, tempDir, waitFor } from "./support.ts";

/**
 * Python builds against a real package index the test serves (PEP 503 pages of wheels it
 * built), reached from the build's sandbox over a network namespace of the test's own.
 */

const greeting = (version: string, requires: string[], extras: string[] = []): TestDistribution => ({
  name: "dp-greeting",
  version,
  requires,
  extras,
  files: {
    "dp_greeting/__init__.py": `__version__ = "${version}"\n\ndef greet(name):\n    return "hello " + name\n`,
  },
  scripts: { "dp-greet": "dp_greeting:main" },
});

const DISTRIBUTIONS: TestDistribution[] = [
  greeting("1.0", []),
  greeting("1.1", ["dp-colors>=1"]),
  greeting("2.0", ['dp-colors>=1; extra == "colors"'], ["colors"]),
  { name: "dp-colors", version: "1.0", files: { "dp_colors/__init__.py": '__version__ = "1.0"\n' } },
  // Stand-ins for the walkthrough's Pipfile, with the same names.
  ...["flask", "gunicorn", "requests", "urllib3"].map((name) => ({ name, version: "9.0", files: { [`${name}/__init__.py`]: '__version__ = "9.0"\n' } })),
];

/** An app that answers with the versions of what it imports (run by the dyno's python). */
const SERVER_PY = `import http.server, json, os, sys
import dp_greeting
try:
    import dp_colors
    colors = dp_colors.__version__
except ImportError:
    colors = None

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"greeting": dp_greeting.__version__, "colors": colors, "file": dp_greeting.__file__, "path": sys.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
`;

let index: PackageIndex;
let wheels: string[];
let indexSettings: PythonBuildSettings;
let runtime: { version: string; file: string; sha256: string };
/** The test's own directory of wheels and runtimes (some wheels served are the host's, elsewhere). */
let wheelDir: string | undefined;

beforeAll(async () => {
  const dir = tempDir("dynoplane-wheels-");
  wheelDir = dir;
  // What pip's isolated build of a setup.py app installs first: this host's setuptools and wheel.
  const setuptools = readdirSync("/usr/share/python-wheels").find((f) => f.startsWith("setuptools-"))!;
  wheels = [...buildWheels(dir, DISTRIBUTIONS), ...hostWheels(dir, ["wheel"]), path.join("/usr/share/python-wheels", setuptools)];
  runtime = buildRuntime(dir);
  const checksum = path.join(dir, "runtime.sha256");
  writeFileSync(checksum, `${runtime.sha256}  python-${runtime.version}.tar.gz\n`);
  const forged = path.join(dir, "forged.sha256");
  writeFileSync(forged, `${"0".repeat(64)}  python-${runtime.version}.tar.gz\n`);
  const versions = path.join(dir, "versions.txt");
  writeFileSync(versions, `3.10.1\n${runtime.version}\n3.11.0\n`);
  index = await startPackageIndex(wheels, {
    [`runtimes/python-${runtime.version}.tar.gz`]: runtime.file,
    [`runtimes/python-${runtime.version}.tar.gz.sha256`]: checksum,
    "runtimes/versions.txt": versions,
    [`forged/python-${runtime.version}.tar.gz`]: runtime.file,
    [`forged/python-${runtime.version}.tar.gz.sha256`]: forged,
  });
  indexSettings = { packages: "index", index: index.url };
}, 60_000);

afterAll(async () => {
  await index?.close();
  if (wheelDir) rmSync(wheelDir, { recursive: true, force: true });
});

afterEach(async () => {
  cleanupBuildDirs();
  await index.start();
});

const pipfile = (packages: string, extra = "") => `${extra}[packages]\n${packages}\n\n[requires]\npython_version = "3.11"\n`;

/** Runs a slug's web process on a fresh agent work dir and returns its answer. */
async function runSlug(slug: string, slugId: string, command: string): Promise<Record<string, unknown>> {
  const runDir = tempDir("dynoplane-run-");
  const logs: LogLine[] = [];
  const sandboxes = await SandboxHost.create(runDir);
  const sup = await createSupervisor({ workDir: runDir, sink: (l) => logs.push(l), slugPath: async () => slug, stopGraceMs: 5_000, sandboxes });
  try {
    const dyno = desiredDyno({ command, env: {}, slug_id: slugId });
    sup.ensure(dyno);
    const info = await waitFor("the dyno up", () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs.map((l) => l.text).join("\n")}`);
    });
    const res = await get(at(info), "/");
    expect(res.status).toBe(200);
    return JSON.parse(res.body) as Record<string, unknown>;
  } finally {
    await sup.stopAll();
    await sandboxes.close();
    rmSync(runDir, { recursive: true, force: true });
  }
}

describe("Python builds from a package index", () => {
  it("resolves a Pipfile's specifier against the index into a self-contained slug that runs on another agent", async () => {
    const { result, record, lines } = await build(
      { dir: appDir({ Pipfile: pipfile('dp-greeting = ">=1.1,<2"'), "server.py": SERVER_PY, Procfile: "web: python server.py\n" }) },
      {},
      { python: indexSettings },
    );
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect(lines).toEqual(expect.arrayContaining(["-----> Creating the app's virtualenv", "-----> Installing requirements with pip"]));
    expect(lines).toContain(`       (from Pipfile; package index ${index.url}, from this host's default)`);
    expect(lines.some((l) => /Successfully installed dp-colors-1\.0 dp-greeting-1\.1/.test(l))).toBe(true);
    expect(index.requests()).toEqual(expect.arrayContaining(["/simple/dp-greeting/", "/packages/dp_greeting-1.1-py3-none-any.whl"]));

    const slug = record.slug!.file;
    const entries = slugEntries(slug);
    const site = "./app/.heroku/python/lib/python3.11/site-packages";
    expect(entries).toEqual(expect.arrayContaining([`${site}/dp_greeting/__init__.py`, `${site}/dp_colors/__init__.py`, "./app/.heroku/python/bin/dp-greet"]));
    expect(slugFile(slug, "./app/.heroku/python/pyvenv.cfg")).toMatch(/include-system-site-packages = false/);
    expect(slugFile(slug, "./app/.heroku/python/bin/dp-greet")).not.toContain("/build/");

    const answer = await runSlug(slug, result.slug_id!, "python server.py");
    expect(answer).toMatchObject({ greeting: "1.1", colors: "1.0" });
    expect(String(answer.file)).toMatch(/^\/app\/\.heroku\/python\/lib\/python3\.11\/site-packages\/dp_greeting\/__init__\.py$/);
    // The host's site packages are not on the path: everything imported is in the slug.
    expect((answer.path as string[]).filter((p) => p.includes("-packages") && !p.startsWith("/app/"))).toEqual([]);
  });
});

describe("which versions and which index", () => {
  it("gets exactly 1.0 for ==1.0, and a table's extras", async () => {
    const pinned = await build({ dir: appDir({ Pipfile: pipfile('dp-greeting = "==1.0"') }) }, {}, { python: indexSettings });
    expect(pinned.result.status).toBe("succeeded");
    expect(pinned.lines.some((l) => /Successfully installed dp-greeting-1\.0$/.test(l))).toBe(true);
    expect(slugEntries(pinned.record.slug!.file).some((e) => e.includes("dp_colors"))).toBe(false);

    const withExtras = await build(
      { dir: appDir({ Pipfile: pipfile('dp-greeting = {version = "==2.0", extras = ["colors"]}') }) },
      {},
      { python: indexSettings },
    );
    expect(withExtras.result.status).toBe("succeeded");
    expect(withExtras.lines.some((l) => /Successfully installed dp-colors-1\.0 dp-greeting-2\.0$/.test(l))).toBe(true);
  });

  it("follows requirements.txt's own --index-url over the host's default", async () => {
    const elsewhere: PythonBuildSettings = { packages: "index", index: "http://198.18.255.253:9/simple" };
    const { result, lines } = await build(
      { dir: appDir({ "requirements.txt": `--index-url ${index.url}\n--trusted-host ${index.address}\n-r base.txt\n`, "base.txt": "dp-greeting<1.1\n" }) },
      {},
      { python: elsewhere },
    );
    expect(result.error).toBeNull();
    expect(lines).toContain(`       (from requirements.txt; package index ${index.url}, from requirements.txt)`);
    expect(lines.some((l) => /Successfully installed dp-greeting-1\.0$/.test(l))).toBe(true);
  });

  it("installs a Pipfile.lock with hashes, and fails one with a tampered hash naming the package", async () => {
    const wheel = (name: string) => wheels.find((w) => path.basename(w).startsWith(name))!;
    const lock = (greetingHash: string) =>
      JSON.stringify({
        _meta: { requires: { python_version: "3.11" }, sources: [{ name: "pypi", url: "https://pypi.org/simple", verify_ssl: true }] },
        default: {
          "dp-greeting": { hashes: [`sha256:${greetingHash}`], index: "pypi", version: "==1.1" },
          "dp-colors": { hashes: [`sha256:${sha256File(wheel("dp_colors-1.0"))}`], index: "pypi", version: "==1.0" },
        },
        develop: {},
      });
    const good = await build({ dir: appDir({ "Pipfile.lock": lock(sha256File(wheel("dp_greeting-1.1"))) }) }, {}, { python: indexSettings });
    expect(good.result.error).toBeNull();
    expect(good.lines.some((l) => /Successfully installed dp-colors-1\.0 dp-greeting-1\.1$/.test(l))).toBe(true);

    const forged = "0".repeat(64);
    const bad = await build({ dir: appDir({ "Pipfile.lock": lock(forged) }) }, {}, { python: indexSettings });
    expect(bad.result.status).toBe("failed");
    expect(bad.result.error).toBe(
      `dp-greeting==1.1 (expected sha256:${forged}, got sha256:${sha256File(wheel("dp_greeting-1.1"))}) does not match the hash in Pipfile.lock: the downloaded file is not the one that was locked`,
    );
    expect(bad.record.slug).toBeUndefined();
  });

  it("builds an app that is a package of its own (setup.py), its dependencies from the index", async () => {
    const { result, record, lines } = await build(
      {
        dir: appDir({
          "setup.py": 'from setuptools import setup\nsetup(name="myapp", version="0.1", py_modules=["myapp"], install_requires=["dp-greeting==1.0"])\n',
          "myapp.py": "import dp_greeting\nVERSION = dp_greeting.__version__\n",
        }),
      },
      {},
      { python: indexSettings },
    );
    expect(result.error, lines.join("\n")).toBeNull();
    expect(lines).toContain(`       (from setup.py; package index ${index.url}, from this host's default)`);
    expect(lines.some((l) => /Successfully installed dp-greeting-1\.0 myapp-0\.1$/.test(l))).toBe(true);
    expect(slugEntries(record.slug!.file)).toEqual(expect.arrayContaining(["./app/.heroku/python/lib/python3.11/site-packages/myapp.py"]));
  });

  it("names a requirement nothing satisfies, and the index it asked", async () => {
    const { result } = await build({ dir: appDir({ Pipfile: pipfile('dp-greeting = ">=3"') }) }, {}, { python: indexSettings });
    expect(result.status).toBe("failed");
    expect(result.error).toBe(`No version of dp-greeting>=3 is available from the package index ${index.url} (required by Pipfile)`);
  });

  it("never shows the password of an index URL given as a config var", async () => {
    const secret = "s3cr3t-pa55";
    const url = index.url.replace("http://", `http://dpuser:${secret}@`);
    const { result, lines } = await build(
      { dir: appDir({ "requirements.txt": "dp-greeting==1.0\ndp-missing==1.0\n" }) },
      { env: { PIP_INDEX_URL: url, PIP_TRUSTED_HOST: index.address } },
      { python: { packages: "index", index: "http://198.18.255.253:9/simple" } },
    );
    expect(result.status).toBe("failed");
    expect(result.error).toBe(
      `No version of dp-missing==1.0 is available from the package index ${index.url.replace("http://", "http://dpuser:****@")} (required by requirements.txt)`,
    );
    expect(lines).toContain(
      `       (from requirements.txt; package index ${index.url.replace("http://", "http://dpuser:****@")}, from the PIP_INDEX_URL config var)`,
    );
    expect(lines.join("\n")).not.toContain(secret);
    // pip did use it: the index was asked.
    expect(index.requests()).toContain("/simple/dp-missing/");
  });
});

describe("the build cache", () => {
  it("installs unchanged requirements again without asking the index, and faster", async () => {
    const app = appDir({ Pipfile: pipfile('dp-greeting = ">=1.1,<2"'), "server.py": SERVER_PY, Procfile: "web: python server.py\n" });
    const appId = randomUUID();
    const work = workDir();
    const first = await build({ dir: app }, { app_id: appId }, { python: indexSettings, work });
    expect(first.result.error).toBeNull();
    const asked = index.requests().length;
    await index.stop();
    const second = await build({ dir: app }, { app_id: appId }, { python: indexSettings, work });
    expect(second.result.error).toBeNull();
    expect(second.lines).toEqual(
      expect.arrayContaining([
        "-----> Installing requirements from the build cache",
        "       (from Pipfile, unchanged since the last build: no package index is asked)",
      ]),
    );
    expect(second.lines.some((l) => /Successfully installed dp-colors-1\.0 dp-greeting-1\.1$/.test(l))).toBe(true);
    expect(index.requests().length).toBe(asked);
    const times = [first, second].map((b) => b.endedAt - b.startedAt);
    console.log(`build from the index: ${times[0]} ms; again from the build cache: ${times[1]} ms`);
    expect(await runSlug(second.record.slug!.file, second.result.slug_id!, "python server.py")).toMatchObject({ greeting: "1.1", colors: "1.0" });
  });
});

describe("hosts without a network", () => {
  it("falls back to the host's packages when the index cannot be reached: the walkthrough's Flask app builds", async () => {
    await index.stop();
    const { result, lines } = await build(
      {
        dir: appDir({
          "app.py": "from flask import Flask\napp = Flask(__name__)\n",
          Pipfile: pipfile('flask = "*"\ngunicorn = "*"'),
          Procfile: "web: gunicorn app:app\n",
        }),
      },
      {},
      { python: indexSettings },
    );
    expect(result.error).toBeNull();
    expect(lines).toContain(` !     The package index ${index.url} cannot be reached (ECONNREFUSED); installing from this host's Python packages instead`);
    expect(lines).toContain("-----> Creating virtualenv with the host's site packages");
  });

  it("fails clearly when the host's packages lack what the app needs", async () => {
    await index.stop();
    const { result } = await build({ dir: appDir({ Pipfile: pipfile('flask = "*"\nrequests = "*"\nurllib3 = "*"') }) }, {}, { python: indexSettings });
    expect(result.status).toBe("failed");
    expect(result.error).toMatch(/^Requirements? (requests|urllib3)\b.* cannot be satisfied by this host's Python packages/);
  });

  it("uses only the host's packages when its operator says so, without asking the index", async () => {
    const before = index.requests().length;
    const { result, lines } = await build({ dir: appDir({ Pipfile: pipfile('flask = "*"') }) }, {}, { python: { packages: "host", index: index.url } });
    expect(result.error).toBeNull();
    expect(lines).toContain(" !     This host installs Python packages from its own, without a package index (its agent runs with --python-packages host)");
    expect(index.requests().slice(before)).toEqual([]);
  });
});

describe("the walkthrough's Pipfile", () => {
  it("builds against the host's index, which stands for the public one its [[source]] names, with the version warning", async () => {
    const before = index.requests().length;
    const { result, lines } = await build(
      {
        dir: appDir({
          Pipfile: `[[source]]\nurl = "https://pypi.org/simple"\nverify_ssl = true\nname = "pypi"\n\n[packages]\ngunicorn = "*"\nflask = "*"\nrequests = "*"\nurllib3 = "*"\n\n[dev-packages]\n\n[requires]\npython_version = "3.9"\n`,
        }),
      },
      {},
      { python: indexSettings },
    );
    expect(result.error).toBeNull();
    expect(lines.some((l) => /^ ! {5}python-3\.9 is not installed on this host \(it has [\d., ]+\); using the nearest, python-3\.\d+\.\d+$/.test(l))).toBe(
      true,
    );
    expect(lines).toContain(`       (from Pipfile; package index ${index.url}, from Pipfile [[source]])`);
    expect(lines.some((l) => /Successfully installed flask-9\.0 gunicorn-9\.0 requests-9\.0 urllib3-9\.0$/.test(l))).toBe(true);
    expect(index.requests().slice(before)).toEqual(expect.arrayContaining(["/simple/requests/", "/simple/urllib3/"]));
  });
});

describe("a hostile Pipfile", () => {
  it("cannot make the build reach a service on the host's loopback as its index", async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.end("<html></html>");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    try {
      const { result, lines } = await build(
        {
          dir: appDir({
            Pipfile: pipfile('dp-greeting = "*"', `[[source]]\nurl = "http://127.0.0.1:${port}/simple"\nverify_ssl = false\nname = "inside"\n\n`),
          }),
        },
        {},
        { python: indexSettings },
      );
      expect(lines.some((l) => l.startsWith(` !     The package index http://127.0.0.1:${port}/simple cannot be reached (`))).toBe(true);
      expect(result.status).toBe("failed");
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });
});

describe("exact Python versions from the host's runtime source", () => {
  const withRuntimes = (over: Partial<PythonBuildSettings> = {}): PythonBuildSettings => ({ ...indexSettings, runtimes: `${index.origin}/runtimes`, ...over });

  it("downloads, verifies, caches and uses the version runtime.txt names, inside the slug", async () => {
    const app = appDir({
      "runtime.txt": `python-${runtime.version}\n`,
      Pipfile: pipfile('dp-greeting = "==1.0"'),
      "server.py": SERVER_PY,
      Procfile: "web: python server.py\n",
    });
    const appId = randomUUID();
    const work = workDir();
    const first = await build({ dir: app }, { app_id: appId }, { python: withRuntimes(), work });
    expect(first.result.error).toBeNull();
    expect(first.lines).toEqual(
      expect.arrayContaining([
        "-----> Using Python version specified in runtime.txt",
        `-----> Installing python-${runtime.version} from this host's runtime source`,
        `-----> Using python-${runtime.version} (.heroku/python/bin/python3, from the runtime source)`,
      ]),
    );
    expect(first.lines).toContain(
      `       (downloaded ${index.origin}/runtimes/python-${runtime.version}.tar.gz, ${statSync(runtime.file).size} bytes, sha256 verified)`,
    );
    expect(first.lines.some((l) => l.includes("is not installed on this host"))).toBe(false);
    const entries = slugEntries(first.record.slug!.file);
    expect(entries).toEqual(
      expect.arrayContaining(["./app/.heroku/python/bin/python3", "./app/.heroku/python/lib/python3.11/site-packages/dp_greeting/__init__.py"]),
    );
    // The app's packages went into the runtime; pip did not.
    expect(entries.some((e) => /site-packages\/pip\//.test(e))).toBe(false);
    expect(await runSlug(first.record.slug!.file, first.result.slug_id!, "python server.py")).toMatchObject({ greeting: "1.0" });

    const asked = index.requests().filter((r) => r.startsWith("/runtimes/")).length;
    expect(asked).toBe(2);
    const second = await build({ dir: app }, { app_id: appId }, { python: withRuntimes(), work });
    expect(second.result.error).toBeNull();
    expect(second.lines).toContain(`       (python-${runtime.version} from the build cache)`);
    expect(index.requests().filter((r) => r.startsWith("/runtimes/")).length).toBe(asked);
  });

  it("takes the newest patch the source lists for a minor version", async () => {
    const [major, minor] = runtime.version.split(".");
    const { result, lines } = await build(
      { dir: appDir({ ".python-version": `${major}.${minor}\n`, "requirements.txt": "" }) },
      {},
      { python: withRuntimes() },
    );
    expect(result.error).toBeNull();
    expect(lines).toContain(`-----> Installing python-${runtime.version} from this host's runtime source`);
    expect(index.requests()).toContain("/runtimes/versions.txt");
  });

  it("fails a runtime whose checksum does not match", async () => {
    const { result, record } = await build(
      { dir: appDir({ "runtime.txt": `python-${runtime.version}\n`, "requirements.txt": "" }) },
      {},
      { python: withRuntimes({ runtimes: `${index.origin}/forged` }) },
    );
    expect(result.status).toBe("failed");
    expect(result.error).toBe(
      `python-${runtime.version} from the runtime source does not match its checksum (expected sha256:${"0".repeat(64)}, got sha256:${runtime.sha256}); it was not used`,
    );
    expect(record.slug).toBeUndefined();
  });

  it("uses the nearest host version for one the source lacks, unless the operator asked for exact versions", async () => {
    const dir = appDir({ "runtime.txt": "python-3.11.99\n", "requirements.txt": "" });
    const lenient = await build({ dir }, {}, { python: withRuntimes() });
    expect(lenient.result.error).toBeNull();
    expect(lenient.lines).toContain("       (the runtime source has no python-3.11.99)");
    expect(
      lenient.lines.some((l) => /^ ! {5}python-3\.11\.99 is not installed on this host; using python-3\.11\.\d+ \(same minor version\) instead$/.test(l)),
    ).toBe(true);

    const strict = await build(
      { dir: appDir({ "runtime.txt": "python-3.11.99\n", "requirements.txt": "" }) },
      {},
      { python: withRuntimes({ strictVersions: true }) },
    );
    expect(strict.result.status).toBe("failed");
    expect(strict.result.error).toBe(
      "python-3.11.99 (from runtime.txt) is not available on this host or from its runtime source, and this host builds pinned versions exactly",
    );
  });
});
