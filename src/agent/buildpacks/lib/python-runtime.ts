/** Choosing the Python interpreter a build uses among those installed on the host. */

/** An interpreter found on the host: its full version and the binary's path. */
export interface Interpreter {
  version: string;
  path: string;
}

/** The version an app asks for; `patch` is null when only major.minor was given. */
export interface RequestedPython {
  major: number;
  minor: number;
  patch: number | null;
  /** Where the request came from, for the build output (`runtime.txt`, `Pipfile` …). */
  source: string;
}

/** The interpreter chosen, with a warning line when it is not exactly what was asked for. */
export interface PythonChoice {
  interpreter: Interpreter;
  warning: string | null;
}

/** A request no installed interpreter can serve, or a file that does not say a version. */
export class PythonVersionError extends Error {}

const label = (r: { major: number; minor: number; patch: number | null }) => `python-${r.major}.${r.minor}${r.patch === null ? "" : `.${r.patch}`}`;

/** Parses `python-3.11.7` or `python-3.11` (runtime.txt's format); other stacks are refused. */
export function parseRuntimeTxt(text: string, source = "runtime.txt"): RequestedPython {
  const t = text.replace(/^\uFEFF/, "").trim();
  const m = /^python-(\d+)\.(\d+)(?:\.(\d+))?$/.exec(t);
  if (!m) {
    const why = /^pypy/i.test(t) ? "PyPy is not available on this host" : "it must name a version like python-3.11.7";
    throw new PythonVersionError(`${source} asks for ${JSON.stringify(t.slice(0, 80))}, which is not supported: ${why}`);
  }
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? null : Number(m[3]), source };
}

/** Parses a bare `3.11` / `3.11.7` (Pipfile's python_version, .python-version); null otherwise. */
export function parseVersionSpec(text: string, source: string): RequestedPython | null {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?\s*$/.exec(text);
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? null : Number(m[3]), source } : null;
}

function parts(version: string): [number, number, number] {
  const [a = 0, b = 0, c = 0] = version.split(".").map((p) => Number.parseInt(p, 10) || 0);
  return [a, b, c];
}

/** Nearest by distance; on a tie the newer one, which is likelier to still get fixes. */
function nearest(candidates: Interpreter[], key: (i: Interpreter) => number, target: number): Interpreter {
  let best = candidates[0]!;
  for (const c of candidates) {
    const [d, bd] = [Math.abs(key(c) - target), Math.abs(key(best) - target)];
    if (d < bd || (d === bd && key(c) > key(best))) best = c;
  }
  return best;
}

/**
 * Picks an interpreter. `installed` is in order of preference (the host's default python3
 * first), which decides among equal versions and when nothing was requested. An exact match
 * wins; otherwise the nearest patch of the same 3.x, then the nearest 3.x, each with a
 * warning; another major version is refused outright, since code for it would not run.
 */
export function chooseInterpreter(requested: RequestedPython | null, installed: Interpreter[]): PythonChoice {
  if (requested && requested.major !== 3) {
    throw new PythonVersionError(
      `${label(requested)} (from ${requested.source}) is not supported: this host builds Python 3 apps only; ask for python-3.x in ${requested.source}`,
    );
  }
  const threes = installed.filter((i) => parts(i.version)[0] === 3);
  if (threes.length === 0) throw new PythonVersionError("no Python 3 interpreter is installed on this host");
  if (!requested) return { interpreter: threes[0]!, warning: null };

  const sameMinor = threes.filter((i) => parts(i.version)[1] === requested.minor);
  if (sameMinor.length) {
    if (requested.patch === null) {
      const newest = sameMinor.reduce((a, b) => (parts(b.version)[2] > parts(a.version)[2] ? b : a));
      return { interpreter: newest, warning: null };
    }
    const exact = sameMinor.find((i) => parts(i.version)[2] === requested.patch);
    if (exact) return { interpreter: exact, warning: null };
    const near = nearest(sameMinor, (i) => parts(i.version)[2], requested.patch);
    return { interpreter: near, warning: `${label(requested)} is not installed on this host; using python-${near.version} (same minor version) instead` };
  }
  const near = nearest(threes, (i) => parts(i.version)[1], requested.minor);
  const installedList = [...new Set(threes.map((i) => i.version))].join(", ");
  return {
    interpreter: near,
    warning: `${label(requested)} is not installed on this host (it has ${installedList}); using the nearest, python-${near.version}`,
  };
}
