import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

/**
 * The app's virtualenv, made to survive the move from the build directory to wherever a
 * dyno unpacks the slug. A venv's `bin/python` is a symlink to the host's interpreter and
 * finds `pyvenv.cfg` next to itself, so Python runs from any directory; what breaks is every
 * absolute path written at build time: script shebangs (`#!/<build dir>/…/bin/python`)
 * and the activation scripts. Scripts get a shebang that finds the venv's python next to
 * themselves, activation moves to `.profile.d/python.sh` (relative to $HOME, the app dir),
 * and the host's console scripts (gunicorn …) get such wrappers in the venv's bin, because
 * a venv over system site packages has none of its own.
 */

const exec = promisify(execFile);

/** Where the venv lives inside the app: Heroku's path, so `.heroku/python/bin` is familiar. */
export const VENV_REL = ".heroku/python";

/**
 * The first lines of every script in the venv's bin: `/bin/sh` runs the venv's own python
 * found next to the script (not PATH's), and Python reads the shell part as a string.
 */
const TRAMPOLINE = `#!/bin/sh\n'''exec' "$(dirname -- "$0")/python" "$0" "$@"\n' '''\n`;

/** The `.profile.d` script every dyno sources before its command. */
export const PROFILE_SCRIPT = `# The app's virtualenv, wherever the slug was unpacked ($HOME is the app directory).
export VIRTUAL_ENV="$HOME/${VENV_REL}"
export PATH="$HOME/${VENV_REL}/bin:$PATH"
export PYTHONUNBUFFERED="\${PYTHONUNBUFFERED:-true}"
export LANG="\${LANG:-C.UTF-8}"
`;

/** Lists `console_scripts` entry points of the named distributions, as JSON. */
const ENTRY_POINTS_PY = `
import json, sys
from importlib.metadata import distribution, PackageNotFoundError
out = {}
for name in sys.argv[1:]:
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        continue
    for ep in dist.entry_points:
        if ep.group == "console_scripts":
            out[ep.name] = ep.value
print(json.dumps(out))
`;

/** `python` and `python3` as relative links to the one copied `python3.X`, instead of two more copies. */
async function linkAliases(bin: string): Promise<void> {
  const versioned = (await fs.readdir(bin)).find((n) => /^python3\.\d+$/.test(n));
  if (!versioned) return;
  for (const alias of ["python", "python3"]) {
    const file = path.join(bin, alias);
    const st = await fs.lstat(file).catch(() => null);
    if (!st?.isFile()) continue;
    await fs.rm(file);
    await fs.symlink(versioned, file);
  }
}

/**
 * Creates the venv: the app's own (without pip), or over the host's site packages (a host
 * without an index), where pip comes from the host's packages when it has one.
 */
export async function createVenv(python: string, venvDir: string, env: NodeJS.ProcessEnv, o: { systemSitePackages: boolean }): Promise<void> {
  await fs.rm(venvDir, { recursive: true, force: true });
  // A copy of the interpreter, not a link to the host's path: a slug holds nothing that points
  // outside ./app (the same tar check as the Slug API's refuses such links).
  await exec(python, ["-m", "venv", "--copies", ...(o.systemSitePackages ? ["--system-site-packages"] : []), "--without-pip", venvDir], { env });
  await linkAliases(path.join(venvDir, "bin"));
  // The app's own virtualenv gets its packages from the build's pip (`pipTool`), not pip of its own.
  if (!o.systemSitePackages) return;
  const venvPython = path.join(venvDir, "bin", "python");
  const hasPip = await exec(venvPython, ["-m", "pip", "--version"], { env }).then(
    () => true,
    () => false,
  );
  if (!hasPip) await exec(venvPython, ["-m", "ensurepip", "--default-pip"], { env });
}

/** Whether `python -m pip` runs and can install for another interpreter (`--python`, pip 22.3 and later). */
async function pipWithPython(python: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const out = await exec(python, ["-m", "pip", "--version"], { env }).then(
    (r) => r.stdout,
    () => "",
  );
  const m = /^pip (\d+)\.(\d+)/.exec(out);
  return m !== null && (Number(m[1]) > 22 || (Number(m[1]) === 22 && Number(m[2]) >= 3));
}

/**
 * The python whose pip installs for index builds, into the app's virtualenv with `--python`,
 * so the slug carries the app's packages and not pip: the interpreter's own pip when the
 * host installed one (its files are the host's, read-only to the build), else a virtualenv
 * of its own in the app's build cache (one per interpreter version, made once).
 */
export async function pipTool(python: string, dir: string, env: NodeJS.ProcessEnv): Promise<string> {
  if (await pipWithPython(python, env)) return python;
  const tool = path.join(dir, "bin", "python");
  if (await pipWithPython(tool, env)) return tool;
  await fs.rm(dir, { recursive: true, force: true });
  await exec(python, ["-m", "venv", "--without-pip", dir], { env });
  await exec(tool, ["-m", "ensurepip", "--default-pip"], { env });
  return tool;
}

/** A console script for entry point `module:attr.path`, in pip's own form. */
export function consoleScript(entryPoint: string): string | null {
  const m = /^\s*([\w.]+)\s*:\s*([\w.]+)\s*(\[.*\])?\s*$/.exec(entryPoint);
  if (!m) return null;
  const [, mod, attrPath] = m as unknown as [string, string, string];
  const [first, ...rest] = attrPath.split(".");
  return `${TRAMPOLINE}import re
import sys
from ${mod} import ${first}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(${[first, ...rest].join(".")}())
`;
}

/**
 * Writes wrappers for the console scripts of `names` (the app's requirements) that the venv
 * does not have yet; returns the scripts written.
 */
export async function addConsoleScripts(venvDir: string, names: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  if (names.length === 0) return [];
  const { stdout } = await exec(path.join(venvDir, "bin", "python"), ["-c", ENTRY_POINTS_PY, ...names], { env });
  const entries = JSON.parse(stdout) as Record<string, string>;
  const written: string[] = [];
  for (const [script, value] of Object.entries(entries)) {
    if (!/^[\w.-]+$/.test(script)) continue;
    const target = path.join(venvDir, "bin", script);
    if (
      await fs.lstat(target).then(
        () => true,
        () => false,
      )
    )
      continue;
    const body = consoleScript(value);
    if (!body) continue;
    await fs.writeFile(target, body, { mode: 0o755 });
    written.push(script);
  }
  return written.sort();
}

/**
 * Removes build-time absolute paths from the venv's bin: shebangs that name the build
 * directory become the trampoline, `activate` computes its directory from $HOME, and the
 * activation scripts of other shells go (no dyno runs them).
 */
export async function relocate(venvDir: string): Promise<void> {
  const bin = path.join(venvDir, "bin");
  for (const name of await fs.readdir(bin)) {
    const file = path.join(bin, name);
    const st = await fs.lstat(file);
    if (!st.isFile()) continue;
    if (["activate.csh", "activate.fish", "Activate.ps1"].includes(name)) {
      await fs.rm(file);
      continue;
    }
    const text = await fs.readFile(file, "utf8").catch(() => null);
    if (text === null) continue;
    if (name === "activate") {
      await fs.writeFile(file, text.split(venvDir).join(`$HOME/${VENV_REL}`));
      continue;
    }
    // pip writes `#!<venv>/bin/python`, or for long paths its own /bin/sh trampoline naming it.
    const head = /^#!\/bin\/sh\n'''exec' .*\n' '''\n/.exec(text)?.[0] ?? /^#!.*\n/.exec(text)?.[0] ?? "";
    if (head.includes(venvDir)) await fs.writeFile(file, TRAMPOLINE + text.slice(head.length), { mode: st.mode & 0o777 });
  }
}

/** Installs the `.profile.d` script that activates the venv in every dyno. */
export async function writeProfile(buildDir: string): Promise<void> {
  const dir = path.join(buildDir, ".profile.d");
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "python.sh"), PROFILE_SCRIPT, { mode: 0o644 });
}
