import fs from "node:fs/promises";
import path from "node:path";
import { CompileError, detail, main, run, topic, warn } from "../../lib/output.ts";
import { chooseInterpreter, PythonVersionError, type PythonChoice } from "../../lib/python-runtime.ts";
import { hostRequirements, requirementName } from "../../lib/requirements.ts";
import { readDependencies, requestedPython } from "./dependencies.ts";
import { findInterpreters } from "./interpreters.ts";
import { addConsoleScripts, createVenv, relocate, VENV_REL, writeProfile } from "./venv.ts";

/**
 * `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` of the Python buildpack: picks an installed
 * interpreter, makes a virtualenv over the host's site packages in the app, and has pip
 * check (and install, from files in the app only) the requirements, with no package index.
 */

const [buildDir = "", cacheDir = ""] = process.argv.slice(2).map((p) => path.resolve(p));

/** pip sees only what the build says: no user or host configuration, no index, no prompts. */
function pipEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    PIP_CONFIG_FILE: "/dev/null",
    PIP_NO_INPUT: "1",
    PIP_DISABLE_PIP_VERSION_CHECK: "1",
    PIP_CACHE_DIR: path.join(cacheDir, "pip"),
    PYTHONDONTWRITEBYTECODE: "1",
  };
}

async function chooseVersion(requested: ReturnType<typeof requestedPython>): Promise<PythonChoice> {
  if (requested) topic(`Using Python version specified in ${requested.source}`);
  try {
    const choice = chooseInterpreter(requested, await findInterpreters());
    if (!requested) topic(`No Python version was specified. Using the host's default: python-${choice.interpreter.version}`);
    if (choice.warning) warn(choice.warning);
    return choice;
  } catch (err) {
    if (err instanceof PythonVersionError) throw new CompileError(err.message);
    throw err;
  }
}

/** Names the requirements pip could not satisfy, from its own error lines. */
function unsatisfied(lines: string[]): string[] {
  const names = new Set<string>();
  for (const line of lines) {
    const m = /No matching distribution found for (.+)$/.exec(line) ?? /Could not find a version that satisfies the requirement (\S+)/.exec(line);
    if (m) names.add(m[1]!.trim());
  }
  return [...names];
}

async function installRequirements(python: string, requirements: string[], source: string): Promise<void> {
  topic("Installing requirements with pip");
  detail(`(from ${source})`);
  // --no-index: what the host lacks fails at once instead of after network retries; setup.py
  // builds use the host's setuptools, since an isolated build env would need an index.
  // Requirements go as arguments, so pip's messages quote them rather than a temporary file.
  const args = ["-m", "pip", "install", "--no-index", "--no-build-isolation", "--progress-bar", "off", "--", ...requirements];
  const result = await run(python, args, { cwd: buildDir, env: pipEnv() });
  if (result.status === 0) return;
  const missing = unsatisfied(result.lines);
  if (missing.length) {
    throw new CompileError(
      `Requirement${missing.length > 1 ? "s" : ""} ${missing.join(", ")} cannot be satisfied by this host's Python packages (builds install without a package index)`,
    );
  }
  throw new CompileError(`pip could not install the requirements from ${source} (exit status ${result.status})`);
}

main(async () => {
  if (!buildDir || !cacheDir) throw new CompileError("usage: compile BUILD_DIR CACHE_DIR ENV_DIR");
  const deps = readDependencies(buildDir);
  const choice = await chooseVersion(requestedPython(buildDir, deps));
  const { interpreter } = choice;
  topic(`Using python-${interpreter.version} (${interpreter.path})`);
  for (const note of deps.notes) detail(note);

  const venvDir = path.join(buildDir, VENV_REL);
  topic("Creating virtualenv with the host's site packages");
  await fs.mkdir(path.join(cacheDir, "pip"), { recursive: true });
  try {
    await createVenv(interpreter.path, venvDir, pipEnv());
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message)
      .trim()
      .split("\n")
      .slice(-3)
      .join(" ");
    throw new CompileError(`could not create a virtualenv with ${interpreter.path}: ${stderr} (is python3-venv installed on this host?)`);
  }
  const venvPython = path.join(venvDir, "bin", "python");
  const { requirements, renamed } = hostRequirements(deps.requirements);
  for (const r of renamed) detail(`Using the host's package for ${r}`);
  if (requirements.length) await installRequirements(venvPython, requirements, deps.source ?? "requirements");
  else detail("No requirements to install");

  const names = requirements.map(requirementName).filter((n): n is string => n !== null);
  const scripts = await addConsoleScripts(venvDir, names, pipEnv());
  if (scripts.length) detail(`Console scripts from the host's packages: ${scripts.join(", ")}`);
  await relocate(venvDir);
  await writeProfile(buildDir);
});
