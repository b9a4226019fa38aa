import { rmSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { SandboxHost } from "../../src/agent/sandbox/index.ts";
import { createSupervisor } from "../../src/agent/supervisor.ts";
import type { LogLine } from "../../src/protocol/host.ts";
import { appDir, build, cleanupBuildDirs, slugEntries, slugFile } from "./build-support.ts";
import { at, desiredDyno, get, tempDir, waitFor } from "./support.ts";

afterEach(cleanupBuildDirs);

/** The walkthrough's Flask app: Pipfile, Procfile `web: gunicorn app:app`, runtime.txt. */
const FLASK_APP = {
  "app.py": `import os
from flask import Flask, jsonify

app = Flask(__name__)

@app.route("/")
def index():
    return jsonify(greeting=os.environ.get("GREETING", "hello"), dyno=os.environ.get("DYNO"))
`,
  Pipfile: `[[source]]
url = "https://pypi.org/simple"
verify_ssl = true
name = "pypi"

[packages]
flask = "*"
gunicorn = ">=19"

[dev-packages]

[requires]
python_version = "3.11"
`,
  Procfile: "web: gunicorn app:app\n",
  "runtime.txt": "python-3.11.7\n",
};

const NODE_APP = {
  "package.json": JSON.stringify({ name: "node-sample", version: "1.0.0", engines: { node: ">=18" }, scripts: { start: "node server.js" } }),
  "server.js": `require("http").createServer((req, res) => res.end(JSON.stringify({ node: process.version, env: process.env.NODE_ENV }))).listen(process.env.PORT);\n`,
};

describe("builds", () => {
  it("builds the Flask app into a slug that runs with gunicorn from another directory", async () => {
    const { result, record, lines, endedAt } = await build({ dir: appDir(FLASK_APP) }, { env: { GREETING: "merhaba" } });
    expect(result).toMatchObject({ status: "succeeded", error: null, process_types: { web: "gunicorn app:app" }, buildpack_provided_description: "Python" });
    expect(result.slug_id).toBe(record.slug!.id);
    expect(record.slug!.processTypes).toEqual({ web: "gunicorn app:app" });
    expect(lines).toEqual(
      expect.arrayContaining([
        "-----> Python app detected",
        "-----> Using Python version specified in runtime.txt",
        "-----> Installing requirements with pip",
        "-----> Discovering process types",
        "       Procfile declares types -> web",
        "-----> Compressing...",
      ]),
    );
    // This host's interpreter is 3.11.x; unless it is exactly 3.11.7 the build says what it used instead.
    const used = lines.find((l) => /^-----> Using python-3\.11\.\d+ /.test(l));
    expect(used).toBeDefined();
    if (!used!.includes("python-3.11.7 "))
      expect(lines).toContain(` !     python-3.11.7 is not installed on this host; using ${/python-3\.11\.\d+/.exec(used!)![0]} (same minor version) instead`);
    expect(lines.some((l) => /^ {7}Requirement already satisfied: flask /.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/^ {7}Done: \d+(\.\d)?[KM]$/);
    // Streamed live: the first lines were sent long before the build ended, in many batches.
    expect(record.batches.length).toBeGreaterThan(2);
    expect(endedAt - record.batches[0]!.at).toBeGreaterThan(200);

    const slug = record.slug!.file;
    const entries = slugEntries(slug);
    expect(entries).toEqual(
      expect.arrayContaining([
        "./app/app.py",
        "./app/Procfile",
        "./app/.profile.d/python.sh",
        "./app/.heroku/python/bin/gunicorn",
        "./app/.heroku/python/bin/python",
      ]),
    );
    expect(entries.every((e) => e.startsWith("./app"))).toBe(true);
    // No script of the venv names the build directory any more.
    for (const e of entries.filter((n) => /^\.\/app\/\.heroku\/python\/bin\/[^/]+$/.test(n) && !/python[\d.]*$/.test(n))) {
      expect(slugFile(slug, e)).not.toContain("/builds/");
    }
    expect(slugFile(slug, "./app/.heroku/python/bin/gunicorn")).toContain("from gunicorn.app.wsgiapp import run");

    const runDir = tempDir("dynoplane-run-");
    const logs: LogLine[] = [];
    const sandboxes = await SandboxHost.create(runDir);
    const sup = await createSupervisor({ workDir: runDir, sink: (l) => logs.push(l), slugPath: async () => slug, stopGraceMs: 5_000, sandboxes });
    try {
      const dyno = desiredDyno({ command: "gunicorn app:app", env: { GREETING: "merhaba" }, slug_id: result.slug_id! });
      sup.ensure(dyno);
      const info = await waitFor("the gunicorn dyno up", () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000);
      expect(info.dir!.startsWith(runDir)).toBe(true);
      const res = await get(at(info), "/");
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ greeting: "merhaba", dyno: "web.1" });
      expect(logs.some((l) => l.text.includes("Starting gunicorn"))).toBe(true);
    } finally {
      await sup.stopAll();
      await sandboxes.close();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("builds a Node app without dependencies, with npm start as its web process", async () => {
    const { result, record, lines } = await build({ dir: appDir(NODE_APP) });
    expect(result).toMatchObject({ status: "succeeded", process_types: { web: "npm start" }, buildpack_provided_description: "Node.js" });
    expect(lines).toEqual(
      expect.arrayContaining([
        "-----> Node.js app detected",
        "       Installing node modules (package.json)",
        "       Procfile declares types     -> (none)",
        "       Default types for buildpack -> web",
      ]),
    );
    expect(slugEntries(record.slug!.file)).toEqual(expect.arrayContaining(["./app/server.js", "./app/package.json", "./app/.profile.d/nodejs.sh"]));

    const runDir = tempDir("dynoplane-run-");
    const sandboxes = await SandboxHost.create(runDir);
    const sup = await createSupervisor({ workDir: runDir, sink: () => {}, slugPath: async () => record.slug!.file, stopGraceMs: 2_000, sandboxes });
    try {
      const dyno = desiredDyno({ command: "npm start", slug_id: result.slug_id! });
      sup.ensure(dyno);
      const info = await waitFor("the npm dyno up", () => sup.inspect(dyno.id)?.state === "up" && sup.inspect(dyno.id), 20_000);
      expect(JSON.parse((await get(at(info), "/")).body)).toEqual({ node: process.version, env: "production" });
    } finally {
      await sup.stopAll();
      await sandboxes.close();
      rmSync(runDir, { recursive: true, force: true });
    }
  });

  it("fails a Node app whose engines.node this host cannot satisfy", async () => {
    const { result, record } = await build({ dir: appDir({ ...NODE_APP, "package.json": JSON.stringify({ name: "x", engines: { node: "<=14" } }) }) });
    expect(result.status).toBe("failed");
    expect(result.error).toBe(`package.json engines.node asks for "<=14", but this host has node ${process.version.slice(1)} and no other version`);
    expect(record.slug).toBeUndefined();
  });

  it("builds a Procfile-only app", async () => {
    const { result, record, lines } = await build({
      dir: appDir({ Procfile: "web: ./serve.sh\nworker: ./work.sh\n", "serve.sh": "#!/bin/sh\nexec sleep 1000\n", "work.sh": "#!/bin/sh\necho working\n" }),
    });
    expect(result).toMatchObject({
      status: "succeeded",
      process_types: { web: "./serve.sh", worker: "./work.sh" },
      buildpack_provided_description: "Procfile",
    });
    expect(lines).toEqual(expect.arrayContaining(["-----> Procfile app detected", "       Procfile declares types -> web, worker"]));
    expect(slugEntries(record.slug!.file)).toEqual(expect.arrayContaining(["./app/serve.sh", "./app/work.sh"]));
  });

  it("fails on a malformed Procfile, naming the line and its text", async () => {
    const { result, record, lines } = await build({ dir: appDir({ Procfile: "web: ./serve.sh\nworker python worker.py\n" }) });
    expect(result.status).toBe("failed");
    expect(result.error).toBe("Procfile line 2 is malformed (expected `<process type>: <command>`): worker python worker.py");
    expect(lines).toContain(` !     ${result.error}`);
    expect(record.slug).toBeUndefined();
  });

  it("refuses runtime.txt python-2.7.18 clearly", async () => {
    const { result, record, lines } = await build({ dir: appDir({ ...FLASK_APP, "runtime.txt": "python-2.7.18\n" }) });
    expect(result.status).toBe("failed");
    expect(result.error).toBe("python-2.7.18 (from runtime.txt) is not supported: this host builds Python 3 apps only; ask for python-3.x in runtime.txt");
    expect(lines).toEqual(
      expect.arrayContaining(["-----> Python app detected", ` !     ${result.error}`, " !     Push rejected, failed to compile Python app."]),
    );
    expect(record.slug).toBeUndefined();
  });

  it("installs requirements.txt from the host's packages, psycopg2-binary as the host's psycopg2", async () => {
    const { result, lines } = await build({
      dir: appDir({
        "app.py": "",
        Procfile: "web: gunicorn app:app\n",
        "requirements.txt": "# database\nFlask-SQLAlchemy>=3\npsycopg2-binary>=2.9 --hash=sha256:00\n-r web.txt\n",
        "web.txt": "flask\ngunicorn\n",
      }),
    });
    expect(result.status).toBe("succeeded");
    expect(lines).toEqual(
      expect.arrayContaining([
        "       Using the host's package for psycopg2-binary -> psycopg2",
        "       (from requirements.txt, with this host's Python packages)",
      ]),
    );
    expect(lines.filter((l) => l.includes("Requirement already satisfied")).length).toBeGreaterThanOrEqual(4);
  });

  it("names a requirement the host cannot satisfy", async () => {
    const { result } = await build({ dir: appDir({ "app.py": "", "requirements.txt": "flask\nsurely-not-on-this-host==1.0\n" }) });
    expect(result.status).toBe("failed");
    expect(result.error).toContain("surely-not-on-this-host==1.0 cannot be satisfied by this host's Python packages");
  });

  it("reports a release process type without running it: the release phase is a one-off dyno the control plane starts", async () => {
    const { result, lines } = await build({
      dir: appDir({ Procfile: "web: ./serve.sh\nrelease: echo migrating > /tmp/ran; exit 1\n", "serve.sh": "#!/bin/sh\n" }),
    });
    expect(result.status).toBe("succeeded");
    expect(result.process_types).toMatchObject({ web: "./serve.sh", release: "echo migrating > /tmp/ran; exit 1" });
    expect(lines.some((l) => /release command/i.test(l))).toBe(false);
  });
});
