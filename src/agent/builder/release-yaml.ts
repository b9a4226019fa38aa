import { parse, YAMLParseError } from "yaml";
import { isProcessType } from "../../protocol/process-types.ts";
import type { ProcessTypes } from "./procfile.ts";

/** What a buildpack's `bin/release` prints, reduced to the parts dynoplane reads. */
export interface BuildpackRelease {
  defaultProcessTypes: ProcessTypes;
  configVars: Record<string, string>;
  addons: string[];
}

/** Output of `bin/release` that is not YAML, or not of the shape buildpacks print. */
export class ReleaseYamlError extends Error {
  constructor(line: number | null, why: string) {
    super(`bin/release output${line === null ? "" : ` line ${line}`}: ${why}`);
  }
}

type Mapping = Record<string, unknown>;

const isMapping = (v: unknown): v is Mapping => typeof v === "object" && v !== null && !Array.isArray(v);

/** A top-level key's mapping; absent, `~` and `{}` are empty. */
function mapping(doc: Mapping, key: string): Mapping {
  const v = doc[key];
  if (v === undefined || v === null) return {};
  if (!isMapping(v)) throw new ReleaseYamlError(null, `${key} must be a mapping`);
  return v;
}

/** A scalar value as the string a config var or command is. */
function text(v: unknown, what: string): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
  throw new ReleaseYamlError(null, `${what} must be a string`);
}

/**
 * Parses the YAML a classic buildpack prints from `bin/release` (with the `yaml` library):
 * `default_process_types` and `config_vars` mappings and an `addons` list; other keys are
 * ignored, as on Heroku. Anything that is not YAML, or not that shape, is refused with the
 * reason (and the line, when the YAML itself is broken).
 */
export function parseReleaseYaml(output: string): BuildpackRelease {
  let doc: unknown;
  try {
    doc = parse(output, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError)
      throw new ReleaseYamlError(err.linePos?.[0].line ?? null, err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, ""));
    throw err;
  }
  if (doc === null || doc === undefined) return { defaultProcessTypes: {}, configVars: {}, addons: [] };
  if (!isMapping(doc)) throw new ReleaseYamlError(null, "expected a mapping of default_process_types, config_vars and addons");

  const defaultProcessTypes: ProcessTypes = {};
  for (const [type, command] of Object.entries(mapping(doc, "default_process_types"))) {
    if (!isProcessType(type)) throw new ReleaseYamlError(null, `invalid process type ${JSON.stringify(type)}`);
    const cmd = text(command, `the command of ${type}`).trim();
    if (cmd === "") throw new ReleaseYamlError(null, `process type ${type} has no command`);
    defaultProcessTypes[type] = cmd;
  }
  const configVars: Record<string, string> = {};
  for (const [key, value] of Object.entries(mapping(doc, "config_vars"))) configVars[key] = text(value, `config var ${key}`);
  const addons = doc.addons ?? [];
  if (!Array.isArray(addons)) throw new ReleaseYamlError(null, "addons must be a list");
  return { defaultProcessTypes, configVars, addons: addons.map((a, i) => text(a, `addon ${i + 1}`)) };
}
