/**
 * How this host's builds get Python packages and interpreters (`dynoplane host
 * --python-packages --python-index --python-runtimes --python-strict-versions`). The Python
 * buildpack reads them from its environment.
 */
export interface PythonBuildSettings {
  /** `index`: pip installs from a package index into the slug; `host`: from this host's own packages, with no network. */
  packages: "index" | "host";
  /** The default package index (a PEP 503 simple API), for apps that name none. */
  index: string;
  /** Base URL of relocatable CPython builds by version (`python-3.11.7.tar.gz` and its `.sha256`), or none. */
  runtimes?: string | null;
  /** Fail a build whose pinned version (`python-3.11.7`) is not available, instead of using the nearest. */
  strictVersions?: boolean;
}

/** The public Python package index. */
export const PUBLIC_PYTHON_INDEX = "https://pypi.org/simple";

export const DEFAULT_PYTHON_SETTINGS: PythonBuildSettings = { packages: "index", index: PUBLIC_PYTHON_INDEX };

/** `--python-packages` values. */
export const PYTHON_PACKAGE_MODES = ["index", "host"] as const;

/** The buildpack's environment for these settings. */
export function pythonBuildEnv(s: PythonBuildSettings): Record<string, string> {
  return {
    DYNOPLANE_PYTHON_PACKAGES: s.packages,
    DYNOPLANE_PYTHON_INDEX: s.index,
    ...(s.runtimes ? { DYNOPLANE_PYTHON_RUNTIMES: s.runtimes } : {}),
    ...(s.strictVersions ? { DYNOPLANE_PYTHON_STRICT_VERSIONS: "1" } : {}),
  };
}
