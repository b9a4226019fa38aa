import { isProcessType } from "../../protocol/process-types.ts";
import type { ProcessTypes } from "./procfile.ts";

/** What a buildpack's `bin/release` prints, reduced to the parts dynoplane reads. */
export interface BuildpackRelease {
  defaultProcessTypes: ProcessTypes;
  configVars: Record<string, string>;
  addons: string[];
}

/** Output of `bin/release` that is not the YAML subset buildpacks print. */
export class ReleaseYamlError extends Error {
  constructor(line: number, why: string) {
    super(`bin/release output line ${line}: ${why}`);
  }
}

/** A YAML scalar: plain, 'single-quoted' ('' is a quote) or "double-quoted" (JSON escapes). */
function scalar(text: string, line: number): string {
  const t = text.trim();
  if (t.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(t)) throw new ReleaseYamlError(line, `unterminated string ${t}`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      throw new ReleaseYamlError(line, `bad double-quoted string ${t}`);
    }
  }
  return t.replace(/\s+#.*$/, "");
}

/** Splits `key: value` at the first colon that is followed by a space or ends the line. */
function keyValue(text: string, line: number): [string, string] {
  const quoted = /^(["'])(.*?)\1:(\s|$)/.exec(text);
  if (quoted) return [quoted[2]!, text.slice(quoted[0].length).trim()];
  const m = /^([^:#\s][^:]*?):(?:\s+(.*))?$/.exec(text);
  if (!m) throw new ReleaseYamlError(line, `expected "key: value", found ${text}`);
  return [m[1]!.trim(), (m[2] ?? "").trim()];
}

const EMPTY_FLOW = new Set(["{}", "[]", "~", "null", ""]);
const KNOWN = new Set(["default_process_types", "config_vars", "addons"]);

/**
 * Parses the YAML that classic buildpacks print from `bin/release`: a document of
 * top-level keys whose values are an indented mapping, an indented `- item` list, or empty
 * (`{}`, `[]`). That subset is what every buildpack emits; anything else is refused with a
 * line number rather than guessed at.
 */
export function parseReleaseYaml(text: string): BuildpackRelease {
  const out: BuildpackRelease = { defaultProcessTypes: {}, configVars: {}, addons: [] };
  let section: string | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const n = i + 1;
    const line = raw.replace(/\s+$/, "");
    if (line.trim() === "" || line.trim().startsWith("#") || line === "---" || line === "...") return;
    if (line.startsWith("--- ")) {
      if (!EMPTY_FLOW.has(line.slice(4).trim())) throw new ReleaseYamlError(n, `unsupported document ${line}`);
      return;
    }
    if (!/^\s/.test(line)) {
      const [key, value] = keyValue(line, n);
      const known = KNOWN.has(key);
      if (known && !EMPTY_FLOW.has(value)) throw new ReleaseYamlError(n, `${key} must be a mapping or a list`);
      // Keys of other buildpack APIs are skipped, with whatever is nested under them.
      section = known ? key : "";
      return;
    }
    if (section === null) throw new ReleaseYamlError(n, "indented line outside any key");
    const item = line.trim();
    if (section === "") return;
    if (section === "addons") {
      if (!item.startsWith("- ")) throw new ReleaseYamlError(n, `addons must be a list, found ${item}`);
      out.addons.push(scalar(item.slice(2), n));
      return;
    }
    const [key, value] = keyValue(item, n);
    if (section === "default_process_types") out.defaultProcessTypes[key] = scalar(value, n);
    else if (section === "config_vars") out.configVars[key] = scalar(value, n);
  });
  for (const [type, command] of Object.entries(out.defaultProcessTypes)) {
    if (!isProcessType(type)) throw new ReleaseYamlError(0, `invalid process type ${JSON.stringify(type)}`);
    if (command === "") throw new ReleaseYamlError(0, `process type ${type} has no command`);
  }
  return out;
}
