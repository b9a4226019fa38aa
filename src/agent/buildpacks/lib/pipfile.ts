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

/** A `[[source]]` of a Pipfile: a package index, by the name packages may refer to it with. */
export interface PipfileSource {
  name: string;
  url: string;
  verifySsl: boolean;
}

/**
 * How entries are read. Without the network (the host's packages are the only source) an
 * entry must name a package by version; with it, version control, URLs, paths and hashes
 * become pip requirement lines as pipenv would install them.
 */
export interface EntryOptions {
  network?: boolean;
  /** Names of the Pipfile's sources, which an entry's `index` must be one of. */
  sources?: string[];
  /** Notes for the build output (an editable install made a regular one, say). */
  notes?: string[];
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

const VCS = ["git", "hg", "svn", "bzr"] as const;

/** A source URL an entry may name: pip fetches it, so only the schemes pip speaks. */
function remoteUrl(value: string, what: string, where: string, schemes: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new PipfileError(`${where}: ${what} (${value}) is not a URL`);
  }
  if (!schemes.includes(url.protocol.replace(/:$/, ""))) throw new PipfileError(`${where}: ${what} must be a ${schemes.join(" or ")} URL (got ${value})`);
  if (/\s/.test(value)) throw new PipfileError(`${where}: ${what} must not contain spaces`);
  return value;
}

/** A requirement that pip installs from somewhere other than an index: VCS, a URL or a path. */
function directRequirement(name: string, t: TomlTable, where: string, o: EntryOptions): string | null {
  const vcs = VCS.find((k) => t[k] !== undefined);
  const file = str(t.file, `${name}.file`);
  const local = str(t.path, `${name}.path`);
  if (!vcs && file === undefined && local === undefined) {
    if (t.editable === true) throw new PipfileError(`${where}: ${name} is editable, which needs a path or a version control URL`);
    return null;
  }
  if (t.editable === true) o.notes?.push(`${name} is editable in the Pipfile; the slug gets a regular install of it`);
  if (local !== undefined) {
    if (local.startsWith("/") || local.split("/").includes("..")) throw new PipfileError(`${where}: ${name}.path must stay inside the app`);
    return local.startsWith(".") ? local : `./${local}`;
  }
  if (!o.network) {
    const [k, v] = vcs ? [vcs, t[vcs]] : ["file", file];
    throw new PipfileError(`${where}: ${name} comes from ${k} (${String(v)}), which needs the network; this host installs packages it already has, by version`);
  }
  const extras = extrasOf(name, t, where);
  if (vcs) {
    const repo = remoteUrl(str(t[vcs], `${name}.${vcs}`)!.replace(new RegExp(`^${vcs}\\+`), ""), `${name}.${vcs}`, where, [
      "https",
      "http",
      "ssh",
      "git",
      "file",
    ]);
    const ref = str(t.ref, `${name}.ref`);
    if (ref !== undefined && !/^[\w./-]+$/.test(ref)) throw new PipfileError(`${where}: ${name}.ref "${ref}" is not a branch, tag or commit`);
    const sub = str(t.subdirectory, `${name}.subdirectory`);
    if (sub !== undefined && (sub.startsWith("/") || sub.split("/").includes("..")))
      throw new PipfileError(`${where}: ${name}.subdirectory must stay inside the repository`);
    return `${name}${extras} @ ${vcs}+${repo}${ref ? `@${ref}` : ""}${sub ? `#subdirectory=${sub}` : ""}${markersOf(name, t)}`;
  }
  return `${name}${extras} @ ${remoteUrl(file!, `${name}.file`, where, ["https", "http"])}${markersOf(name, t)}`;
}

function extrasOf(name: string, t: TomlTable, where: string): string {
  const value = t.extras ?? [];
  if (!Array.isArray(value) || value.some((e) => typeof e !== "string" || !NAME.test(e)))
    throw new PipfileError(`${where}: ${name}.extras must be a list of names`);
  return value.length ? `[${(value as string[]).join(",")}]` : "";
}

/** `; marker and ...` from `markers` and marker keys (`sys_platform = "== 'linux'"`), or "". */
function markersOf(name: string, t: TomlTable): string {
  const markers: string[] = [];
  const m = str(t.markers, `${name}.markers`);
  if (m) markers.push(m);
  for (const [k, v] of Object.entries(t)) if (MARKER_KEYS.has(k)) markers.push(`${k} ${str(v, `${name}.${k}`)!.trim()}`);
  return markers.length ? `; ${markers.map((x) => (markers.length > 1 ? `(${x})` : x)).join(" and ")}` : "";
}

const ENTRY_KEYS = new Set(["version", "extras", "markers", "path", "editable", "file", "ref", "subdirectory", "index", "hashes", ...VCS]);

/**
 * One `[packages]` (or lock `default`) entry as a requirement line; with the network, a
 * lock's hashes follow it (`--hash=sha256:…`, which puts pip in hash-checking mode).
 */
export function entryToRequirement(name: string, entry: TomlValue, where: string, o: EntryOptions = {}): string {
  if (!NAME.test(name)) throw new PipfileError(`${where}: "${name}" is not a valid package name`);
  if (typeof entry === "string") return safeNormalize(`${name}${versionSpec(name, entry)}`, name, where);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry) || entry instanceof Date)
    throw new PipfileError(`${where}: ${name} must be a version string or a table`);
  const t = entry as TomlTable;
  for (const k of Object.keys(t)) if (!ENTRY_KEYS.has(k) && !MARKER_KEYS.has(k)) throw new PipfileError(`${where}: ${name} has an unsupported key "${k}"`);
  const index = str(t.index, `${name}.index`);
  if (index !== undefined && o.sources && !o.sources.includes(index))
    throw new PipfileError(`${where}: ${name}.index names "${index}", which is not a [[source]] of the Pipfile`);
  const direct = directRequirement(name, t, where, o);
  if (direct !== null) return direct;
  const spec = versionSpec(name, str(t.version, `${name}.version`) ?? "*");
  const line = safeNormalize(`${name}${extrasOf(name, t, where)}${spec}${markersOf(name, t)}`, name, where);
  const hashes = t.hashes ?? [];
  if (!Array.isArray(hashes) || hashes.some((h) => typeof h !== "string" || !/^(sha256|sha384|sha512):[0-9a-f]+$/.test(h)))
    throw new PipfileError(`${where}: ${name}.hashes must be a list like ["sha256:<hex>"]`);
  return o.network && hashes.length ? `${line} ${(hashes as string[]).map((h) => `--hash=${h}`).join(" ")}` : line;
}

function safeNormalize(line: string, name: string, where: string): string {
  try {
    return normalizeRequirement(line);
  } catch (err) {
    throw new PipfileError(`${where}: ${name}: ${(err as Error).message}`);
  }
}

function section(doc: TomlTable, key: string, file: string, o: EntryOptions): string[] {
  const s = doc[key];
  if (s === undefined) return [];
  if (typeof s !== "object" || Array.isArray(s) || s instanceof Date) throw new PipfileError(`${file}: [${key}] must be a table`);
  return Object.entries(s).map(([name, entry]) => entryToRequirement(name, entry, `${file} [${key}]`, o));
}

/** The `[[source]]` entries, checked: each a name and an http(s) URL (`${VAR}` allowed in it). */
function sources(doc: TomlTable): PipfileSource[] {
  const list = doc.source;
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new PipfileError("Pipfile: source must be written [[source]]");
  return list.map((entry, i) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry) || entry instanceof Date)
      throw new PipfileError(`Pipfile: [[source]] ${i + 1} must be a table`);
    const t = entry as TomlTable;
    const url = str(t.url, `[[source]] ${i + 1} url`);
    if (!url) throw new PipfileError(`Pipfile: [[source]] ${i + 1} needs a url`);
    if (!/^https?:\/\/\S+$/.test(url)) throw new PipfileError(`Pipfile: [[source]] ${i + 1} url must be an http or https URL`);
    const verify = t.verify_ssl ?? true;
    if (typeof verify !== "boolean") throw new PipfileError(`Pipfile: [[source]] ${i + 1} verify_ssl must be true or false`);
    return { name: str(t.name, `[[source]] ${i + 1} name`) ?? `source-${i + 1}`, url, verifySsl: verify };
  });
}

/** The first line of the TOML parser's message, without its generic prefix. */
function tomlReason(err: TomlError): string {
  return (err.message.split("\n")[0] ?? "").replace(/^Invalid TOML document: /, "");
}

/** Parses a Pipfile: `[packages]`, `[dev-packages]`, `[requires]` and `[[source]]`. */
export function parsePipfile(text: string, o: EntryOptions = {}): Pipfile & { sources: PipfileSource[] } {
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
  const declared = sources(doc);
  const options = { ...o, sources: declared.map((d) => d.name) };
  return {
    packages: section(doc, "packages", "Pipfile", options),
    devPackages: section(doc, "dev-packages", "Pipfile", options),
    pythonVersion,
    sources: declared,
  };
}

/** Turns Pipfile.lock's `default` section (what the app runs with) into requirement lines. */
export function lockToRequirements(text: string, o: EntryOptions = {}): { requirements: string[]; pythonVersion: string | null; sources: PipfileSource[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new PipfileError(`Pipfile.lock is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new PipfileError("Pipfile.lock must be a JSON object");
  const lock = doc as { default?: unknown; _meta?: { requires?: Record<string, unknown>; sources?: unknown } };
  const def = lock.default ?? {};
  if (typeof def !== "object" || def === null || Array.isArray(def)) throw new PipfileError('Pipfile.lock: "default" must be an object');
  const requirements = Object.entries(def as Record<string, unknown>).map(([name, entry]) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new PipfileError(`Pipfile.lock default: ${name} must be an object`);
    return entryToRequirement(name, entry as TomlTable, "Pipfile.lock default", o);
  });
  const req = lock._meta?.requires ?? {};
  const v = req.python_full_version ?? req.python_version;
  let locked: PipfileSource[] = [];
  try {
    locked = sources({ source: (lock._meta?.sources ?? []) as TomlValue });
  } catch (err) {
    throw new PipfileError(`Pipfile.lock _meta.sources: ${(err as Error).message.replace(/^Pipfile: /, "")}`);
  }
  return { requirements, pythonVersion: typeof v === "string" ? v : null, sources: locked };
}
