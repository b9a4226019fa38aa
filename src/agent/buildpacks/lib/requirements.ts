import path from "node:path";

/**
 * requirements.txt, read the way a build without a package index needs it: every line
 * checked and normalised, `-r` includes followed (inside the app only), and whatever
 * would need the network (URLs, VCS links) or cannot live in a slug (editable installs)
 * refused with the file and line named.
 */

/** A line that cannot be installed here; the message names the file and line. */
export class RequirementsError extends Error {}

/** What the files ask for, plus notes about options that do not apply here. */
export interface ParsedRequirements {
  requirements: string[];
  notes: string[];
}

/** PEP 508 project names. */
export const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const SPEC = /^(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+$/;
/** Index and install options that have no meaning when the host's packages are the index. */
const IGNORED = new Set([
  "-i",
  "--index-url",
  "--extra-index-url",
  "--no-index",
  "-f",
  "--find-links",
  "--trusted-host",
  "--pre",
  "--prefer-binary",
  "--only-binary",
  "--no-binary",
  "--require-hashes",
  "--use-feature",
]);
const TAKES_VALUE = new Set([
  "-i",
  "--index-url",
  "--extra-index-url",
  "-f",
  "--find-links",
  "--trusted-host",
  "--only-binary",
  "--no-binary",
  "--use-feature",
]);
const MAX_INCLUDE_DEPTH = 10;

/**
 * Checks and normalises one requirement specifier (`Flask[async] >=2.0, <3 ; python_version
 * >= "3.8"` → `Flask[async]>=2.0,<3; python_version >= "3.8"`); throws a plain message.
 */
export function normalizeRequirement(text: string): string {
  const [head = "", ...markerParts] = text.split(";");
  const marker = markerParts.join(";").trim();
  if (markerParts.length && !marker) throw new Error(`empty environment marker in "${text}"`);
  if (head.includes("[") && !head.includes("]")) throw new Error(`unclosed "[" in "${text}"`);
  const m = /^\s*([^\s[(<>=!~;@]+)\s*(?:\[([^\]]*)\])?\s*(.*)$/.exec(head);
  if (!m) throw new Error(`not a requirement: "${text}"`);
  const [, name = "", extrasText, rest = ""] = m;
  if (!NAME.test(name)) throw new Error(`"${name}" is not a valid package name`);
  if (rest.trim().startsWith("@"))
    throw new Error(`${name} is given as a URL (${rest.trim().slice(1).trim()}); this host installs packages it already has, by name`);
  const extras = extrasText === undefined ? [] : extrasText.split(",").map((e) => e.trim());
  if (extras.some((e) => !NAME.test(e))) throw new Error(`bad extras in "${text}"`);
  let specText = rest.trim();
  if (specText.startsWith("(") && specText.endsWith(")")) specText = specText.slice(1, -1).trim();
  const specs = specText === "" ? [] : specText.split(",").map((s) => s.trim());
  for (const s of specs) if (!SPEC.test(s)) throw new Error(`"${s}" is not a version specifier (in "${text.trim()}")`);
  return `${name}${extras.length ? `[${extras.join(",")}]` : ""}${specs.map((s) => s.replace(/\s+/g, "")).join(",")}${marker ? `; ${marker}` : ""}`;
}

/**
 * Projects that hosts ship under another name: Heroku apps commonly ask for the wheel-only
 * `psycopg2-binary`, which Debian provides as `psycopg2` (the same module).
 */
const HOST_NAMES: Record<string, string> = { "psycopg2-binary": "psycopg2" };

/** Renames requirements to the projects the host provides; returns the lines and what was renamed. */
export function hostRequirements(requirements: string[]): { requirements: string[]; renamed: string[] } {
  const renamed: string[] = [];
  const out = requirements.map((r) => {
    const name = requirementName(r);
    const host = name ? HOST_NAMES[name.toLowerCase().replace(/[._]/g, "-")] : undefined;
    if (!name || !host) return r;
    renamed.push(`${name} -> ${host}`);
    return host + r.slice(name.length);
  });
  return { requirements: out, renamed };
}

/** The project name of a normalised requirement (for finding its console scripts). */
export function requirementName(requirement: string): string | null {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)/.exec(requirement);
  return m && !requirement.startsWith(".") ? m[1]! : null;
}

/** Logical lines: `\` continues a line, comments go (a `#` at the start or after a space). */
export function logicalLines(text: string): { n: number; text: string }[] {
  const out: { n: number; text: string }[] = [];
  let pending: { n: number; text: string } | null = null;
  text
    .replace(/^\uFEFF/, "")
    .split(/\r?\n/)
    .forEach((raw, i) => {
      const line = raw.replace(/(^|\s)#.*$/, "");
      const cont = /\\\s*$/.test(line);
      const part = cont ? line.replace(/\\\s*$/, "") : line;
      pending = pending ? { n: pending.n, text: `${pending.text} ${part}` } : { n: i + 1, text: part };
      if (!cont) {
        if (pending.text.trim()) out.push({ n: pending.n, text: pending.text.trim() });
        pending = null;
      }
    });
  if (pending && (pending as { text: string }).text.trim()) out.push(pending);
  return out;
}

/** Whether a line names a local file or directory (a wheel, an sdist, the app itself). */
export function isLocalPath(text: string): boolean {
  return /^\.\.?(\/|$)/.test(text) || /^[\w./-]+\.(whl|tar\.gz|zip)$/.test(text);
}

/**
 * Parses requirements.txt. `read` returns another file of the app by its path relative to
 * the app (or null when missing), for `-r` includes, which resolve relative to the
 * including file as pip does, and may not leave the app or form a cycle.
 */
export function parseRequirements(text: string, file: string, read: (rel: string) => string | null, chain: string[] = []): ParsedRequirements {
  const out: ParsedRequirements = { requirements: [], notes: [] };
  const stack = [...chain, file];
  for (const { n, text: line } of logicalLines(text)) {
    const at = `${file} line ${n}`;
    const fail = (why: string): never => {
      throw new RequirementsError(`${at}: ${why}`);
    };
    if (line.startsWith("-")) {
      // `--name=value`, `--name value`, `-x value` or `-xvalue`.
      const m = /^(--[A-Za-z-]+)(?:[=\s]\s*(.*))?$/.exec(line) ?? /^(-[A-Za-z])\s*(.*)$/.exec(line);
      const [opt = line, value = ""] = m ? [m[1], (m[2] ?? "").trim()] : [];
      if (opt === "-r" || opt === "--requirement") {
        if (!value) fail(`${opt} needs a file name`);
        if (stack.length > MAX_INCLUDE_DEPTH) fail("requirements files are nested too deeply");
        if (path.isAbsolute(value) || /^[a-z][a-z0-9+.-]*:/i.test(value)) fail(`-r ${value}: only files inside the app can be included`);
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), value));
        if (target.startsWith("../") || target === "..") fail(`-r ${value}: only files inside the app can be included`);
        if (stack.includes(target)) fail(`-r ${value} includes itself: ${[...stack, target].join(" -> ")}`);
        const included = read(target);
        if (included === null) fail(`-r ${value}: ${target} does not exist`);
        const sub = parseRequirements(included as string, target, read, stack);
        out.requirements.push(...sub.requirements);
        out.notes.push(...sub.notes);
      } else if (opt === "-e" || opt === "--editable") {
        fail(`editable requirements are not supported (${line}): a slug must hold installed packages; list the package by name, or "." for the app itself`);
      } else if (opt === "-c" || opt === "--constraint") {
        fail(`constraints files are not supported (${line}); pin versions in requirements.txt instead`);
      } else if (IGNORED.has(opt)) {
        if (TAKES_VALUE.has(opt) && !value) fail(`${opt} needs a value`);
        out.notes.push(`${at}: ${opt} is ignored: builds install from the host's packages, without an index`);
      } else {
        fail(`unknown option ${opt}`);
      }
      continue;
    }
    // Per-requirement options (hashes) follow the specifier.
    const spec = line.replace(/\s+--(hash|global-option|config-settings)[=\s]\S+/g, "").trim();
    if (spec.startsWith("file:")) fail(`${spec}: give local packages as relative paths (./dist/pkg.whl)`);
    if (/^(git|hg|svn|bzr)\+/.test(spec) || /^[a-z]+:\/\//i.test(spec)) fail(`${spec} needs the network; this host installs packages it already has, by name`);
    if (isLocalPath(spec)) {
      if (path.posix.normalize(spec).startsWith("../")) fail(`${spec} is outside the app`);
      out.requirements.push(spec);
      continue;
    }
    try {
      out.requirements.push(normalizeRequirement(spec));
    } catch (err) {
      fail((err as Error).message);
    }
  }
  return out;
}

/** What pip will read of a requirements file and the files it includes, as far as a build needs to know it. */
export interface RequirementFiles {
  /** Every file read, in order, with its text: what a cached install must match. */
  files: { name: string; text: string }[];
  /** Index URLs the files name (`--index-url`, `--extra-index-url`), for scrubbing from the output. */
  indexes: string[];
  /** The `--index-url` the files set (the last one, as pip takes it), which pip uses over its environment's. */
  indexUrl: string | null;
  /** Whether anything is installed from the app's own files (its contents change without the lines changing). */
  local: boolean;
}

/**
 * Follows a requirements file's `-r` and `-c` includes (inside the app only, no cycles) for
 * a build that lets pip itself read them: pip parses the lines; this says which files they
 * are, which indexes they name and whether the app's own files are installed.
 */
export function scanRequirementFiles(
  file: string,
  read: (rel: string) => string | null,
  chain: string[] = [],
  out: RequirementFiles = { files: [], indexes: [], indexUrl: null, local: false },
): RequirementFiles {
  const text = read(file);
  if (text === null) throw new RequirementsError(`${chain.at(-1) ?? file}: ${file} does not exist`);
  out.files.push({ name: file, text });
  const stack = [...chain, file];
  for (const { n, text: line } of logicalLines(text)) {
    const at = `${file} line ${n}`;
    const m = /^(--[A-Za-z-]+|-[A-Za-z])(?:[=\s]\s*(.*)|(\S.*))?$/.exec(line);
    if (m) {
      const [, opt = "", a, b] = m;
      const value = (a ?? b ?? "").trim();
      if (["-r", "--requirement", "-c", "--constraint"].includes(opt)) {
        if (!value) throw new RequirementsError(`${at}: ${opt} needs a file name`);
        if (stack.length > MAX_INCLUDE_DEPTH) throw new RequirementsError(`${at}: requirements files are nested too deeply`);
        if (path.isAbsolute(value) || /^[a-z][a-z0-9+.-]*:/i.test(value))
          throw new RequirementsError(`${at}: ${opt} ${value}: only files inside the app can be included`);
        const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), value));
        if (target.startsWith("../") || target === "..") throw new RequirementsError(`${at}: ${opt} ${value}: only files inside the app can be included`);
        if (stack.includes(target)) throw new RequirementsError(`${at}: ${opt} ${value} includes itself: ${[...stack, target].join(" -> ")}`);
        scanRequirementFiles(target, read, stack, out);
      } else if (["-i", "--index-url", "--extra-index-url"].includes(opt)) {
        if (value) out.indexes.push(value);
        if (value && opt !== "--extra-index-url") out.indexUrl = value;
      } else if (opt === "-e" || opt === "--editable") {
        if (isLocalPath(value)) out.local = true;
      } else if (opt === "-f" || opt === "--find-links") {
        if (!/^[a-z]+:\/\//i.test(value)) out.local = true;
      }
      continue;
    }
    const spec = line.replace(/\s+--(hash|global-option|config-settings)[=\s]\S+/g, "").trim();
    if (isLocalPath(spec) || spec.startsWith("file:")) out.local = true;
  }
  return out;
}
