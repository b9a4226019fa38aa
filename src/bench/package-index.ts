import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/**
 * A real Python package index for build tests and the deploy benchmark: wheels built here
 * (with the standard library's zipfile, per the wheel spec), served as PEP 503 simple pages
 * by Python's http.server, inside a network namespace made for it. Builds run in sandboxes
 * that reach neither the host's loopback or private ranges nor any network the host is
 * attached to, only what lies beyond a gateway, as the internet does: the namespace is
 * joined to the host by a veth pair on a /30 of 198.18.0.0/15 (reserved for network tests),
 * and the index serves on an address of 198.19.0.0/16 on its loopback, which the host routes
 * to through that pair.
 */

/** A pure-Python distribution to build as a wheel. */
export interface TestDistribution {
  name: string;
  version: string;
  /** Requires-Dist lines (`dp-colors>=1`, `dp-colors; extra == "colors"`). */
  requires?: string[];
  extras?: string[];
  /** Files of the wheel by path, e.g. `{"dp_greeting/__init__.py": "..."}`. */
  files: Record<string, string>;
  /** console_scripts entry points: name → `module:function`. */
  scripts?: Record<string, string>;
}

const MAKE_WHEELS = String.raw`
import base64, hashlib, json, os, sys, zipfile
spec = json.load(sys.stdin)
out = sys.argv[1]
for w in spec:
    dist = w["name"].replace("-", "_").replace(".", "_")
    info = f"{dist}-{w['version']}.dist-info"
    files = dict(w["files"])
    meta = f"Metadata-Version: 2.1\nName: {w['name']}\nVersion: {w['version']}\n"
    meta += "".join(f"Provides-Extra: {e}\n" for e in w.get("extras", []))
    meta += "".join(f"Requires-Dist: {r}\n" for r in w.get("requires", []))
    files[f"{info}/METADATA"] = meta
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: dynoplane-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if w.get("scripts"):
        files[f"{info}/entry_points.txt"] = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in w["scripts"].items())
    record = []
    for p, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{p},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    name = os.path.join(out, f"{dist}-{w['version']}-py3-none-any.whl")
    with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as z:
        for p, text in files.items():
            z.writestr(zipfile.ZipInfo(p, date_time=(2020, 1, 1, 0, 0, 0)), text)
    print(name)
`;

/**
 * Wheels of distributions installed for the host's /usr/bin/python3 (Debian's python3-flask,
 * gunicorn …), made from their installed files and metadata, so a local index can serve the
 * real packages. Tagged for this interpreter when they hold compiled modules.
 */
const HOST_WHEELS = String.raw`
import base64, hashlib, importlib.metadata as md, os, sys, sysconfig, zipfile
out = sys.argv[1]
tag = "cp%d%d" % sys.version_info[:2]
plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
for name in sys.argv[2:]:
    dist = md.distribution(name)
    meta = dist.metadata
    real = meta["Name"]
    version = meta["Version"]
    base = os.path.dirname(str(dist._path))
    top = (dist.read_text("top_level.txt") or "").split()
    files = {}
    for t in top:
        p = os.path.join(base, t)
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for n in names:
                    full = os.path.join(root, n)
                    files[os.path.relpath(full, base)] = open(full, "rb").read()
        elif os.path.isfile(p + ".py"):
            files[t + ".py"] = open(p + ".py", "rb").read()
    binary = any(f.endswith(".so") for f in files)
    wtag = f"{tag}-{tag}-{plat}" if binary else "py3-none-any"
    stem = real.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    lines = [f"Metadata-Version: 2.1", f"Name: {real}", f"Version: {version}"]
    lines += [f"Provides-Extra: {e}" for e in (meta.get_all("Provides-Extra") or [])]
    lines += [f"Requires-Dist: {r}" for r in (dist.requires or [])]
    files[f"{info}/METADATA"] = ("\n".join(lines) + "\n").encode()
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nGenerator: dynoplane\nRoot-Is-Purelib: {'false' if binary else 'true'}\nTag: {wtag}\n".encode()
    eps = dist.read_text("entry_points.txt")
    if eps:
        files[f"{info}/entry_points.txt"] = eps.encode()
    record = []
    for p, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{p},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = os.path.join(out, f"{stem}-{version}-{wtag}.whl")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for p, data in files.items():
            z.writestr(p, data)
    print(wheel)
`;

/** Wheels of these distributions as installed for /usr/bin/python3; returns their paths. */
export function hostWheels(dir: string, names: string[]): string[] {
  mkdirSync(dir, { recursive: true });
  const out = execFileSync("/usr/bin/python3", ["-c", HOST_WHEELS, dir, ...names], { encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

/** Builds wheels into `dir`; returns their paths. */
export function buildWheels(dir: string, dists: TestDistribution[]): string[] {
  mkdirSync(dir, { recursive: true });
  const out = execFileSync("/usr/bin/python3", ["-c", MAKE_WHEELS, dir], { input: JSON.stringify(dists), encoding: "utf8" });
  return out.split("\n").filter(Boolean);
}

export const sha256File = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** PEP 503's normalised project name. */
export const normalizeName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, "-");

/** A running index. */
export interface PackageIndex {
  /** `http://198.19.x.y:8000/simple`. */
  url: string;
  /** `http://198.19.x.y:8000`: where `files` are. */
  origin: string;
  address: string;
  port: number;
  /** The paths requested so far, in order. */
  requests(): string[];
  /** Stops serving (connections are refused); `start` serves again at the same address. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });

/** Lays out the simple pages for `wheels` under `root`, and `files` (path under root → file on this host) beside them. */
function layout(root: string, wheels: string[], files: Record<string, string>): void {
  for (const [rel, file] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), readFileSync(file));
  }
  const byProject = new Map<string, string[]>();
  mkdirSync(path.join(root, "packages"), { recursive: true });
  for (const wheel of wheels) {
    const file = path.basename(wheel);
    writeFileSync(path.join(root, "packages", file), readFileSync(wheel));
    const project = normalizeName(file.split("-")[0]!);
    byProject.set(project, [...(byProject.get(project) ?? []), file]);
  }
  const page = (title: string, links: string) => `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body>\n${links}</body></html>\n`;
  mkdirSync(path.join(root, "simple"), { recursive: true });
  writeFileSync(path.join(root, "simple", "index.html"), page("Simple index", [...byProject.keys()].map((p) => `<a href="${p}/">${p}</a>\n`).join("")));
  for (const [project, files] of byProject) {
    mkdirSync(path.join(root, "simple", project), { recursive: true });
    const links = files.map((f) => `<a href="../../packages/${f}#sha256=${sha256File(path.join(root, "packages", f))}">${f}</a>\n`).join("");
    writeFileSync(path.join(root, "simple", project, "index.html"), page(`Links for ${project}`, links));
  }
}

/** Serves `wheels` (and other `files`, such as Python runtimes) from a namespace of the test's own; `close` removes it all. */
export async function startPackageIndex(wheels: string[], files: Record<string, string> = {}): Promise<PackageIndex> {
  const tag = randomBytes(3).toString("hex");
  const ns = `dpidx${tag}`;
  const [hostIf, nsIf] = [`dpih${tag}`, `dpin${tag}`];
  const third = randomInt(0, 256);
  const fourth = randomInt(0, 64) * 4;
  const hostAddress = `198.18.${third}.${fourth + 1}`;
  const gateway = `198.18.${third}.${fourth + 2}`;
  const address = `198.19.${third}.${fourth + 2}`;
  const port = 8000;
  const root = path.join(os.tmpdir(), `dynoplane-index-${tag}`);
  layout(root, wheels, files);
  sh("ip", ["netns", "add", ns]);
  sh("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf]);
  sh("ip", ["link", "set", nsIf, "netns", ns]);
  sh("ip", ["addr", "add", `${hostAddress}/30`, "dev", hostIf]);
  sh("ip", ["link", "set", hostIf, "up"]);
  sh("ip", ["-n", ns, "link", "set", "lo", "up"]);
  sh("ip", ["-n", ns, "addr", "add", `${gateway}/30`, "dev", nsIf]);
  sh("ip", ["-n", ns, "addr", "add", `${address}/32`, "dev", "lo"]);
  sh("ip", ["-n", ns, "link", "set", nsIf, "up"]);
  sh("ip", ["route", "add", `${address}/32`, "via", gateway]);
  // No default route: whoever asks comes from the host's end of the pair (builds are
  // masqueraded to it), and http.server's reverse lookup of its own address fails at once
  // instead of waiting on a resolver it cannot reach.

  const seen: string[] = [];
  let server: ChildProcess | null = null;
  const start = async () => {
    if (server) return;
    const child = spawn("ip", ["netns", "exec", ns, "/usr/bin/python3", "-u", "-m", "http.server", String(port), "--bind", address, "--directory", root], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    server = child;
    let buffered = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const m = /"(?:GET|HEAD) (\S+) HTTP/.exec(buffered.slice(0, nl));
        if (m) seen.push(m[1]!);
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf("\n");
      }
    });
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://${address}:${port}/simple/`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 100 || child.exitCode !== null) throw new Error(`the package index did not start in ${ns}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const child = server;
    server = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
  const close = async () => {
    await stop();
    for (const args of [
      ["netns", "del", ns],
      ["link", "del", hostIf],
    ])
      try {
        sh("ip", args);
      } catch {
        // Gone with the namespace already.
      }
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await start();
  } catch (err) {
    await close();
    throw err;
  }
  return { url: `http://${address}:${port}/simple`, origin: `http://${address}:${port}`, address, port, requests: () => [...seen], stop, start, close };
}

/**
 * A relocatable Python runtime tarball for a runtime source, made from this host's own
 * /usr/bin/python3 as a copied tree (`venv --copies`), with its version and SHA-256.
 */
export function buildRuntime(dir: string): { version: string; file: string; sha256: string } {
  const python = "/usr/bin/python3";
  const version = execFileSync(python, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], { encoding: "utf8" }).trim();
  const tree = path.join(dir, "tree");
  rmSync(tree, { recursive: true, force: true });
  execFileSync(python, ["-m", "venv", "--copies", "--without-pip", path.join(tree, "python")]);
  const file = path.join(dir, `python-${version}.tar.gz`);
  execFileSync("tar", ["-czf", file, "-C", tree, "python"]);
  rmSync(tree, { recursive: true, force: true });
  return { version, file, sha256: sha256File(file) };
}
