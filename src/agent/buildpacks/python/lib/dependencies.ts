import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { CompileError } from "../../lib/output.ts";
import { lockToRequirements, parsePipfile, PipfileError, type PipfileSource } from "../../lib/pipfile.ts";
import { parseRuntimeTxt, parseVersionSpec, PythonVersionError, type RequestedPython } from "../../lib/python-runtime.ts";
import { parseRequirements, RequirementsError, scanRequirementFiles } from "../../lib/requirements.ts";

/** What the app asks pip for, and where that came from. */
export interface Dependencies {
  /** The file the requirements were read from, for the build output. */
  source: "Pipfile.lock" | "Pipfile" | "requirements.txt" | "setup.py" | "pyproject.toml" | null;
  /** Requirement lines (with the network: as a requirements file holds them, hashes included). */
  requirements: string[];
  /** With the network, a requirements file of the app's that pip reads itself (`-r`), instead of `requirements`. */
  file: string | null;
  notes: string[];
  /** The Python version the dependency files ask for, when runtime.txt does not. */
  python: RequestedPython | null;
  /** The Pipfile's (or its lock's) package indexes. */
  sources: PipfileSource[];
  /** Index URLs the requirements files name themselves. */
  fileIndexes: string[];
  /** The `--index-url` of the requirements files, which pip asks instead of the planned one. */
  fileIndexUrl: string | null;
  /** Everything the install depends on, as text: equal text, equal install (for the build cache). */
  inputs: string;
  /** Whether the app's own files are installed (they change without the requirements changing). */
  local: boolean;
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

const none = (): Pick<Dependencies, "file" | "notes" | "sources" | "fileIndexes" | "fileIndexUrl" | "local"> => ({
  file: null,
  notes: [],
  sources: [],
  fileIndexes: [],
  fileIndexUrl: null,
  local: false,
});

/**
 * Reads the app's dependencies the way Heroku's Python buildpack prefers them:
 * Pipfile.lock (its `default` section, exactly as locked), else Pipfile's `[packages]`,
 * else requirements.txt, else the app itself through setup.py or pyproject.toml. Without
 * the network (`network: false`) only what names a package by version is accepted.
 */
export function readDependencies(buildDir: string, network = false): Dependencies {
  return explained(() => {
    const lock = read(buildDir, "Pipfile.lock");
    const pipfile = read(buildDir, "Pipfile");
    if (lock !== null) {
      const notes: string[] = [];
      const parsed = lockToRequirements(lock, { network, notes });
      const fromPipfile = pipfile !== null ? parsePipfile(pipfile, { network }) : null;
      const requirements = parsed.requirements;
      return {
        ...none(),
        source: "Pipfile.lock",
        requirements,
        notes,
        python: requestedFrom(parsed.pythonVersion ?? fromPipfile?.pythonVersion ?? null, "Pipfile.lock"),
        sources: parsed.sources.length ? parsed.sources : (fromPipfile?.sources ?? []),
        inputs: requirements.join("\n"),
        local: requirements.some((r) => r.startsWith(".")),
      };
    }
    if (pipfile !== null) {
      const notes: string[] = [];
      const parsed = parsePipfile(pipfile, { network, notes });
      return {
        ...none(),
        source: "Pipfile",
        requirements: parsed.packages,
        notes,
        python: requestedFrom(parsed.pythonVersion, "Pipfile"),
        sources: parsed.sources,
        inputs: parsed.packages.join("\n"),
        local: parsed.packages.some((r) => r.startsWith(".")),
      };
    }
    const txt = read(buildDir, "requirements.txt");
    if (txt !== null) {
      if (network) {
        const scanned = scanRequirementFiles("requirements.txt", (rel) => read(buildDir, rel));
        return {
          ...none(),
          source: "requirements.txt",
          requirements: [],
          file: "requirements.txt",
          python: null,
          fileIndexes: scanned.indexes,
          fileIndexUrl: scanned.indexUrl,
          inputs: scanned.files.map((f) => `${f.name}\n${f.text}`).join("\n"),
          local: scanned.local,
        };
      }
      const parsed = parseRequirements(txt, "requirements.txt", (rel) => read(buildDir, rel));
      return { ...none(), source: "requirements.txt", requirements: parsed.requirements, notes: parsed.notes, python: null, inputs: "" };
    }
    for (const file of ["setup.py", "pyproject.toml"] as const) {
      if (read(buildDir, file) !== null) return { ...none(), source: file, requirements: ["."], python: null, inputs: ".", local: true };
    }
    return { ...none(), source: null, requirements: [], python: null, inputs: "" };
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
