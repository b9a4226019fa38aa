import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CompileError } from "../../lib/output.ts";
import { lockToRequirements, parsePipfile, PipfileError } from "../../lib/pipfile.ts";
import { parseRuntimeTxt, parseVersionSpec, PythonVersionError, type RequestedPython } from "../../lib/python-runtime.ts";
import { parseRequirements, RequirementsError } from "../../lib/requirements.ts";

/** What the app asks pip for, and where that came from. */
export interface Dependencies {
  /** The file the requirements were read from, for the build output. */
  source: "Pipfile.lock" | "Pipfile" | "requirements.txt" | "setup.py" | null;
  requirements: string[];
  notes: string[];
  /** The Python version the dependency files ask for, when runtime.txt does not. */
  python: RequestedPython | null;
}

function read(buildDir: string, rel: string): string | null {
  const file = path.join(buildDir, rel);
  return existsSync(file) ? readFileSync(file, "utf8") : null;
}

/** Turns a parser's error into the message that fails the build. */
function explained<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PipfileError || err instanceof RequirementsError || err instanceof PythonVersionError) throw new CompileError(err.message);
    throw err;
  }
}

function requestedFrom(version: string | null, source: string): RequestedPython | null {
  if (version === null) return null;
  const r = parseVersionSpec(version, source);
  if (!r) throw new CompileError(`${source} asks for Python "${version}", which is not a version like 3.11`);
  return r;
}

/**
 * Reads the app's dependencies the way Heroku's Python buildpack prefers them:
 * Pipfile.lock (its `default` section, exactly as locked), else Pipfile's `[packages]`,
 * else requirements.txt, else the app itself through setup.py.
 */
export function readDependencies(buildDir: string): Dependencies {
  return explained(() => {
    const lock = read(buildDir, "Pipfile.lock");
    const pipfile = read(buildDir, "Pipfile");
    if (lock !== null) {
      const parsed = lockToRequirements(lock);
      const fromPipfile = pipfile !== null ? parsePipfile(pipfile).pythonVersion : null;
      return {
        source: "Pipfile.lock",
        requirements: parsed.requirements,
        notes: [],
        python: requestedFrom(parsed.pythonVersion ?? fromPipfile, "Pipfile.lock"),
      };
    }
    if (pipfile !== null) {
      const parsed = parsePipfile(pipfile);
      return { source: "Pipfile", requirements: parsed.packages, notes: [], python: requestedFrom(parsed.pythonVersion, "Pipfile") };
    }
    const txt = read(buildDir, "requirements.txt");
    if (txt !== null) {
      const parsed = parseRequirements(txt, "requirements.txt", (rel) => read(buildDir, rel));
      return { source: "requirements.txt", requirements: parsed.requirements, notes: parsed.notes, python: null };
    }
    if (read(buildDir, "setup.py") !== null) return { source: "setup.py", requirements: ["."], notes: [], python: null };
    return { source: null, requirements: [], notes: [], python: null };
  });
}

/** The Python version the app asks for: runtime.txt first, then .python-version, then its dependency files. */
export function requestedPython(buildDir: string, deps: Dependencies): RequestedPython | null {
  return explained(() => {
    const runtime = read(buildDir, "runtime.txt");
    if (runtime !== null && runtime.trim() !== "") return parseRuntimeTxt(runtime);
    const pinned = read(buildDir, ".python-version");
    if (pinned !== null) {
      const line = pinned
        .split(/\r?\n/)
        .map((l) => l.trim())
        .find((l) => l && !l.startsWith("#"));
      if (line) return requestedFrom(line, ".python-version");
    }
    return deps.python;
  });
}
