import { isProcessType, MAX_PROCESS_TYPE_LENGTH } from "../../protocol/process-types.ts";

/** Process type → command, as a Procfile or a buildpack's default_process_types declares them. */
export type ProcessTypes = Record<string, string>;

/** A Procfile line that is not `<type>: <command>`; the message names the line and its text. */
export class ProcfileError extends Error {
  constructor(
    readonly line: number,
    readonly text: string,
    why: string,
  ) {
    super(`Procfile line ${line} is malformed (${why}): ${text}`);
  }
}

/** Heroku's Procfile grammar: a type of letters, digits, `_` and `-`, a colon, a command. */
const ENTRY = /^([A-Za-z0-9_-]+):[ \t]*(.*?)\s*$/;

/**
 * Parses a Procfile. Blank lines and `#` comments are skipped; any other line that is not
 * `type: command` throws a ProcfileError, because a typo there would otherwise silently
 * leave a process type undeclared. A repeated type keeps its last command, as on Heroku.
 */
export function parseProcfile(text: string): ProcessTypes {
  const types: ProcessTypes = {};
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const m = ENTRY.exec(raw.trimStart());
    if (!m) throw new ProcfileError(i + 1, raw, "expected `<process type>: <command>`");
    const [, type, command] = m as unknown as [string, string, string];
    if (command === "") throw new ProcfileError(i + 1, raw, `process type ${type} has no command`);
    if (!isProcessType(type)) throw new ProcfileError(i + 1, raw, `process type names are at most ${MAX_PROCESS_TYPE_LENGTH} characters`);
    types[type] = command;
  });
  return types;
}

/** The Procfile wins over the buildpacks' defaults, type by type. */
export function mergeProcessTypes(defaults: ProcessTypes, procfile: ProcessTypes | null): ProcessTypes {
  return { ...defaults, ...(procfile ?? {}) };
}

/**
 * The "Discovering process types" detail lines, worded as Heroku's: what the Procfile
 * declares, and which defaults of the buildpack it did not override.
 */
export function describeProcessTypes(procfile: ProcessTypes | null, defaults: ProcessTypes): string[] {
  const declared = Object.keys(procfile ?? {});
  const fromDefaults = Object.keys(defaults).filter((t) => !declared.includes(t));
  const list = (types: string[]) => (types.length ? types.join(", ") : "(none)");
  if (fromDefaults.length === 0) return [`Procfile declares types -> ${list(declared)}`];
  return [`Procfile declares types     -> ${list(declared)}`, `Default types for buildpack -> ${list(fromDefaults)}`];
}
