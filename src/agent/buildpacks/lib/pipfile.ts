import { NAME, normalizeRequirement } from "./requirements.ts";
import { parse as parseToml, TomlError, type TomlTable, type TomlValue } from "smol-toml";

/** A Pipfile or Pipfile.lock that cannot be turned into requirements; the message says why. */
export class PipfileError extends Error {}

/** What a Pipfile declares, as pip requirement lines. */
export interface Pipfile {
  packages: string[];
  devPackages: string[];
  /** `[requires] python_full_version` or `python_version`, as written. */
  pythonVersion: string | null;
}

/** PEP 508 marker variables Pipenv accepts as package keys (`sys_platform = "== 'linux'"`). */
const MARKER_KEYS = new Set([
  "os_name",
  "sys_platform",
  "platform_machine",
  "platform_python_implementation",
  "platform_release",
  "platform_system",
  "platform_version",
  "python_version",
  "python_full_version",
  "implementation_name",
  "implementation_version",
]);
const IGNORED_KEYS = new Set(["index", "hashes"]);
const OPERATOR = /^(===|~=|==|!=|<=|>=|<|>)/;

function str(value: TomlValue | undefined, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new PipfileError(`${what} must be a string`);
  return value;
}

/** A version entry: `*` (any), or one or more specifiers (`>=1.1`, `==2.3`, `>=1,<2`). */
function versionSpec(name: string, version: string): string {
  const v = version.trim();
  if (v === "*" || v === "") return "";
  for (const part of v.split(",")) {
    if (!OPERATOR.test(part.trim())) throw new PipfileError(`${name}: version "${version}" needs an operator, such as "==${v}"`);
  }
  return v.replace(/\s+/g, "");
}

/** One `[packages]` (or lock `default`) entry as a requirement line. */
export function entryToRequirement(name: string, entry: TomlValue, where: string): string {
  if (!NAME.test(name)) throw new PipfileError(`${where}: "${name}" is not a valid package name`);
  if (typeof entry === "string") return safeNormalize(`${name}${versionSpec(name, entry)}`, name, where);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry) || entry instanceof Date)
    throw new PipfileError(`${where}: ${name} must be a version string or a table`);
  const t = entry as TomlTable;
  if (t.editable === true) throw new PipfileError(`${where}: ${name} is editable; a slug must hold installed packages, so list it by version`);
  for (const k of ["git", "hg", "svn", "bzr", "file"]) {
    if (t[k] !== undefined)
      throw new PipfileError(
        `${where}: ${name} comes from ${k} (${String(t[k])}), which needs the network; this host installs packages it already has, by version`,
      );
  }
  const local = str(t.path, `${name}.path`);
  if (local !== undefined) {
    if (local.startsWith("/") || local.split("/").includes("..")) throw new PipfileError(`${where}: ${name}.path must stay inside the app`);
    return local.startsWith(".") ? local : `./${local}`;
  }
  const extrasValue = t.extras ?? [];
  if (!Array.isArray(extrasValue) || extrasValue.some((e) => typeof e !== "string"))
    throw new PipfileError(`${where}: ${name}.extras must be a list of strings`);
  const extras = extrasValue as string[];
  const markers: string[] = [];
  const m = str(t.markers, `${name}.markers`);
  if (m) markers.push(m);
  for (const [k, v] of Object.entries(t)) {
    if (MARKER_KEYS.has(k)) markers.push(`${k} ${str(v, `${name}.${k}`)!.trim()}`);
    else if (!["version", "extras", "markers", "path", "editable"].includes(k) && !IGNORED_KEYS.has(k)) {
      throw new PipfileError(`${where}: ${name} has an unsupported key "${k}"`);
    }
  }
  const spec = versionSpec(name, str(t.version, `${name}.version`) ?? "*");
  const line = `${name}${extras.length ? `[${extras.join(",")}]` : ""}${spec}${markers.length ? `; ${markers.map((x) => (markers.length > 1 ? `(${x})` : x)).join(" and ")}` : ""}`;
  return safeNormalize(line, name, where);
}

function safeNormalize(line: string, name: string, where: string): string {
  try {
    return normalizeRequirement(line);
  } catch (err) {
    throw new PipfileError(`${where}: ${name}: ${(err as Error).message}`);
  }
}

function section(doc: TomlTable, key: string, file: string): string[] {
  const s = doc[key];
  if (s === undefined) return [];
  if (typeof s !== "object" || Array.isArray(s) || s instanceof Date) throw new PipfileError(`${file}: [${key}] must be a table`);
  return Object.entries(s).map(([name, entry]) => entryToRequirement(name, entry, `${file} [${key}]`));
}

/** The first line of the TOML parser's message, without its generic prefix. */
function tomlReason(err: TomlError): string {
  return (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
}

/** Parses a Pipfile: `[packages]`, `[dev-packages]` and `[requires]`; `[[source]]` is read and ignored. */
export function parsePipfile(text: string): Pipfile {
  let doc: TomlTable;
  try {
    doc = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) throw new PipfileError(`Pipfile line ${err.line}: ${tomlReason(err)}`);
    throw err;
  }
  const requires = doc.requires;
  let pythonVersion: string | null = null;
  if (requires !== undefined) {
    if (typeof requires !== "object" || Array.isArray(requires) || requires instanceof Date) throw new PipfileError("Pipfile: [requires] must be a table");
    pythonVersion = str(requires.python_full_version, "python_full_version") ?? str(requires.python_version, "python_version") ?? null;
  }
  return { packages: section(doc, "packages", "Pipfile"), devPackages: section(doc, "dev-packages", "Pipfile"), pythonVersion };
}

/** Turns Pipfile.lock's `default` section (what the app runs with) into requirement lines. */
export function lockToRequirements(text: string): { requirements: string[]; pythonVersion: string | null } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PipfileError(`Pipfile.lock is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new PipfileError("Pipfile.lock must be a JSON object");
  const lock = doc as { default?: unknown; _meta?: { requires?: Record<string, unknown> } };
  const def = lock.default ?? {};
  if (typeof def !== "object" || def === null || Array.isArray(def)) throw new PipfileError('Pipfile.lock: "default" must be an object');
  const requirements = Object.entries(def as Record<string, unknown>).map(([name, entry]) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new PipfileError(`Pipfile.lock default: ${name} must be an object`);
    return entryToRequirement(name, entry as TomlTable, "Pipfile.lock default");
  });
  const req = lock._meta?.requires ?? {};
  const v = req.python_full_version ?? req.python_version;
  return { requirements, pythonVersion: typeof v === "string" ? v : null };
}
