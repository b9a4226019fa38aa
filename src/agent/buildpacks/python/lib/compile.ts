import fs from "node:fs/promises";
import path from "node:path";
import { CompileError, detail, main, run, topic, warn } from "../../lib/output.ts";
import { chooseInterpreter, type Interpreter, type PythonChoice, PythonVersionError, type RequestedPython } from "../../lib/python-runtime.ts";
import { hostRequirements, requirementName } from "../../lib/requirements.ts";
import { type Dependencies, readDependencies, requestedPython } from "./dependencies.ts";
import { chooseIndexes, PUBLIC_INDEX, reachable, redactUrl, urlSecrets } from "./indexes.ts";
import { findInterpreters } from "./interpreters.ts";
import { askedIndex, cachedWheels, type IndexInstall, installCached, installFromIndex } from "./packages.ts";
import { installRuntime } from "./runtimes.ts";
import { addConsoleScripts, createVenv, pipTool, relocate, VENV_REL, writeProfile } from "./venv.ts";

/**
 * `bin/compile BUILD_DIR CACHE_DIR ENV_DIR` of the Python buildpack: picks an interpreter,
 * makes the app's own virtualenv and installs its requirements into it from a package
 * index, so the slug carries everything it imports. A host without a network (its operator
 * says so, or the index cannot be reached) installs from the host's own packages instead,
 * into a virtualenv over them, as a warning says.
 */

const [buildDir = "", cacheDir = "", envDir = ""] = process.argv.slice(2).map((p) => path.resolve(p));

/** The host's settings, from its agent (`dynoplane host --python-*`). */
const hostSettings = {
  packages: process.env.DYNOPLANE_PYTHON_PACKAGES === "host" ? ("host" as const) : ("index" as const),
  index: process.env.DYNOPLANE_PYTHON_INDEX || PUBLIC_INDEX,
  runtimes: process.env.DYNOPLANE_PYTHON_RUNTIMES || null,
  strictVersions: process.env.DYNOPLANE_PYTHON_STRICT_VERSIONS === "1",
};

/** The app's config vars, as the build was given them (one file each in ENV_DIR). */
async function configVars(): Promise<Record<string, string>> {
  const vars: Record<string, string> = {};
  for (const name of await fs.readdir(envDir).catch(() => [] as string[])) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) continue;
    const value = await fs.readFile(path.join(envDir, name), "utf8").catch(() => null);
    if (value !== null) vars[name] = value;
  }
  return vars;
}

/** pip sees only what the build says: no user or host configuration, no prompts. */
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

/** The interpreter among the host's for what the app asks (the host's default when it asks nothing). */
async function hostInterpreter(requested: RequestedPython | null): Promise<Interpreter> {
  let choice: PythonChoice;
  try {
    choice = chooseInterpreter(requested, await findInterpreters());
  } catch (err) {
    if (err instanceof PythonVersionError) throw new CompileError(err.message);
    throw err;
  }
  if (!requested) topic(`No Python version was specified. Using the host's default: python-${choice.interpreter.version}`);
  if (choice.warning && requested?.patch != null && hostSettings.strictVersions) {
    const where = hostSettings.runtimes ? "on this host or from its runtime source" : "on this host";
    throw new CompileError(
      `python-${requested.major}.${requested.minor}.${requested.patch} (from ${requested.source}) is not available ${where}, and this host builds pinned versions exactly`,
    );
  }
  if (choice.warning) warn(choice.warning);
  return choice.interpreter;
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

/** Installs with the host's packages as the only index, into a virtualenv over them. */
async function installFromHost(python: string, deps: Dependencies): Promise<void> {
  const venvDir = path.join(buildDir, VENV_REL);
  const { requirements, renamed } = hostRequirements(deps.requirements);
  for (const r of renamed) detail(`Using the host's package for ${r}`);
  if (requirements.length) {
    topic("Installing requirements with pip");
    detail(`(from ${deps.source}, with this host's Python packages)`);
    for (const note of deps.notes) detail(note);
    // --no-index: what the host lacks fails at once instead of after network retries; setup.py
    // builds use the host's setuptools, since an isolated build env would need an index.
    // Requirements go as arguments, so pip's messages quote them rather than a temporary file.
    const args = ["-m", "pip", "install", "--no-index", "--no-build-isolation", "--progress-bar", "off", "--", ...requirements];
    const result = await run(python, args, { cwd: buildDir, env: pipEnv() });
    if (result.status !== 0) {
      const missing = unsatisfied(result.lines);
      if (missing.length) {
        throw new CompileError(
          `Requirement${missing.length > 1 ? "s" : ""} ${missing.join(", ")} cannot be satisfied by this host's Python packages (this build installs without a package index)`,
        );
      }
      throw new CompileError(`pip could not install the requirements from ${deps.source} (exit status ${result.status})`);
    }
  } else detail("No requirements to install");
  const names = requirements.map(requirementName).filter((n): n is string => n !== null);
  const scripts = await addConsoleScripts(venvDir, names, pipEnv());
  if (scripts.length) detail(`Console scripts from the host's packages: ${scripts.join(", ")}`);
}

async function makeVenv(interpreter: string, systemSitePackages: boolean): Promise<string> {
  const venvDir = path.join(buildDir, VENV_REL);
  topic(systemSitePackages ? "Creating virtualenv with the host's site packages" : "Creating the app's virtualenv");
  await fs.mkdir(path.join(cacheDir, "pip"), { recursive: true });
  try {
    await createVenv(interpreter, venvDir, pipEnv(), { systemSitePackages });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? (err as Error).message)
      .trim()
      .split("\n")
      .slice(-3)
      .join(" ");
    throw new CompileError(`could not create a virtualenv with ${interpreter}: ${stderr} (is python3-venv installed on this host?)`);
  }
  return path.join(venvDir, "bin", "python");
}

main(async () => {
  if (!buildDir || !cacheDir) throw new CompileError("usage: compile BUILD_DIR CACHE_DIR ENV_DIR");
  const network = hostSettings.packages === "index";
  const deps = readDependencies(buildDir, network);
  const requested = requestedPython(buildDir, deps);
  if (requested) topic(`Using Python version specified in ${requested.source}`);
  // The host's packages instead of an index: what the app asks for is read again, as it
  // must be without the network (a version control URL, say, cannot be installed).
  const fromHost = async () => {
    const offline = readDependencies(buildDir, false);
    const interpreter = await hostInterpreter(requested);
    topic(`Using python-${interpreter.version} (${interpreter.path})`);
    await installFromHost(await makeVenv(interpreter.path, true), offline);
  };

  if (!network) {
    warn("This host installs Python packages from its own, without a package index (its agent runs with --python-packages host)");
    await fromHost();
  } else {
    const config = await configVars();
    const plan = chooseIndexes({
      sources: deps.sources,
      sourcesFrom: deps.source === "Pipfile.lock" ? "Pipfile.lock" : "Pipfile",
      config,
      hostIndex: hostSettings.index,
    });
    const tmpDir = await fs.mkdtemp(path.join(process.env.TMPDIR ?? "/tmp", "python-build-"));
    try {
      // A runtime source gives the app exactly the version it asks for, inside its slug.
      const venvDir = path.join(buildDir, VENV_REL);
      const runtime = requested && hostSettings.runtimes ? await installRuntime({ base: hostSettings.runtimes, requested, dest: venvDir, cacheDir }) : null;
      if (requested && hostSettings.runtimes && !runtime)
        detail(`(the runtime source has no python-${requested.major}.${requested.minor}${requested.patch === null ? "" : `.${requested.patch}`})`);
      const interpreter = runtime ?? (await hostInterpreter(requested));
      topic(`Using python-${interpreter.version} (${runtime ? `${VENV_REL}/bin/python3, from the runtime source` : interpreter.path})`);
      const install: IndexInstall = {
        python: "",
        pip: "",
        buildDir,
        cacheDir,
        tmpDir,
        interpreterVersion: interpreter.version,
        deps,
        plan,
        env: pipEnv(),
        secrets: urlSecrets([plan.primary, ...plan.extra, ...deps.fileIndexes]),
      };
      const cached = deps.requirements.length || deps.file ? await cachedWheels(install) : [];
      const probe = cached ? { ok: true as const } : await reachable(askedIndex(install));
      if (!probe.ok) {
        warn(`The package index ${redactUrl(askedIndex(install))} cannot be reached (${probe.reason}); installing from this host's Python packages instead`);
        await fromHost();
      } else {
        install.python = runtime ? runtime.path : await makeVenv(interpreter.path, false);
        install.pip = await pipTool(interpreter.path, path.join(cacheDir, "python", `pip-${interpreter.version}`), pipEnv()).catch(
          (err: Error & { stderr?: string }) => {
            throw new CompileError(
              `could not set up pip for python-${interpreter.version}: ${String(err.stderr ?? err.message)
                .trim()
                .split("\n")
                .slice(-2)
                .join(" ")}`,
            );
          },
        );
        for (const note of deps.notes) detail(note);
        if (!deps.requirements.length && !deps.file) detail("No requirements to install");
        else if (cached) await installCached(install, cached);
        else await installFromIndex(install);
      }
    } finally {
      await fs.rm(tmpDir, { recursive: true, force: true });
    }
  }
  await relocate(path.join(buildDir, VENV_REL));
  await writeProfile(buildDir);
});
