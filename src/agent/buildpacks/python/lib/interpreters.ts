import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import type { Interpreter } from "../../lib/python-runtime.ts";

const exec = promisify(execFile);

/** Where pyenv keeps interpreters when it is installed for every user of a host. */
const PYENV_ROOTS = ["/opt/pyenv", "/usr/local/pyenv"];
const NAME = /^python3(\.\d+)?$/;

async function list(dir: string): Promise<string[]> {
  return (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => NAME.test(n)).map((n) => path.join(dir, n));
}

/** Directories to search, most preferred first: PATH, the system's, then pyenv versions. */
async function searchDirs(env: NodeJS.ProcessEnv): Promise<string[]> {
  const dirs = [...(env.PATH ?? "").split(":").filter(Boolean), "/usr/bin", "/usr/local/bin"];
  const roots = [...(env.PYENV_ROOT ? [env.PYENV_ROOT] : []), ...PYENV_ROOTS];
  for (const root of roots) {
    const versions = await fs.readdir(path.join(root, "versions")).catch(() => [] as string[]);
    for (const v of versions.sort()) dirs.push(path.join(root, "versions", v, "bin"));
  }
  return [...new Set(dirs)];
}

/** Asks the binary itself: a file that merely looks like python3.X may not run for this user. */
async function probe(bin: string): Promise<string | null> {
  try {
    const { stdout } = await exec(bin, ["-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], {
      timeout: 10_000,
      env: { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" },
    });
    return /^\d+\.\d+\.\d+$/.test(stdout.trim()) ? stdout.trim() : null;
  } catch {
    return null;
  }
}

/**
 * The Python 3 interpreters this user can run, each binary once (by its real path), the
 * one `python3` on PATH resolves to first: it is the one the host's packages belong to.
 */
export async function findInterpreters(env: NodeJS.ProcessEnv = process.env): Promise<Interpreter[]> {
  const candidates: string[] = [];
  for (const dir of await searchDirs(env)) candidates.push(...(await list(dir)));
  const seen = new Map<string, string>();
  for (const bin of candidates) {
    const real = await fs.realpath(bin).catch(() => null);
    // Keep the versioned name (python3.11) over the generic one for the same binary.
    if (real && (!seen.has(real) || /python3$/.test(seen.get(real)!))) seen.set(real, bin);
  }
  const found = await Promise.all([...seen.entries()].map(async ([real, bin]) => ({ real, bin, version: await probe(bin) })));
  const usable = found.filter((f) => f.version !== null);
  const defaultBin = candidates.find((c) => path.basename(c) === "python3");
  const defaultReal = defaultBin ? await fs.realpath(defaultBin).catch(() => null) : null;
  usable.sort((a, b) => Number(b.real === defaultReal) - Number(a.real === defaultReal));
  return usable.map((f) => ({ version: f.version!, path: f.bin }));
}
