import { describe, expect, it } from "vitest";
import { describeProcessTypes, mergeProcessTypes, parseProcfile, ProcfileError, type ProcessTypes } from "../../src/agent/builder/procfile.ts";
import { parseReleaseYaml, ReleaseYamlError } from "../../src/agent/builder/release-yaml.ts";

describe("parseProcfile", () => {
  it.each<[string, string, ProcessTypes]>([
    ["one web process", "web: gunicorn app:app\n", { web: "gunicorn app:app" }],
    ["no trailing newline", "web: gunicorn app:app", { web: "gunicorn app:app" }],
    [
      "several types, in order",
      "web: node server.js\nworker: node worker.js\nrelease: ./migrate\n",
      { web: "node server.js", worker: "node worker.js", release: "./migrate" },
    ],
    ["no space after the colon", "web:npm start", { web: "npm start" }],
    ["tabs and trailing spaces", "web:\tbundle exec puma   \n", { web: "bundle exec puma" }],
    ["colons inside the command", "web: gunicorn --bind 0.0.0.0:$PORT app:app", { web: "gunicorn --bind 0.0.0.0:$PORT app:app" }],
    ["comments and blank lines", "# how this app runs\n\nweb: ./run\n   \n  # indented comment\n", { web: "./run" }],
    ["CRLF line endings", "web: a\r\nworker: b\r\n", { web: "a", worker: "b" }],
    ["a byte order mark", "\uFEFFweb: a", { web: "a" }],
    ["digits, dashes and underscores in types", "web-2: a\nclock_1: b", { "web-2": "a", clock_1: "b" }],
    ["a repeated type keeps the last", "web: one\nweb: two", { web: "two" }],
    ["leading indentation", "  web: a", { web: "a" }],
    ["an empty file", "", {}],
  ])("parses %s", (_name, text, expected) => {
    expect(parseProcfile(text)).toEqual(expected);
  });

  it.each<[string, string, number, string]>([
    ["a line without a colon", "web: ok\nworker python worker.py\n", 2, "worker python worker.py"],
    ["a type with spaces", "web server: ./run", 1, "web server: ./run"],
    ["a type with a dot", "web.1: ./run", 1, "web.1: ./run"],
    ["an empty command", "\n\nweb:\n", 3, "web:"],
    ["a command of blanks", "web:    ", 1, "web:    "],
    ["a line starting with a colon", ": ./run", 1, ": ./run"],
    ["a type that is too long", `${"w".repeat(64)}: ./run`, 1, `${"w".repeat(64)}: ./run`],
  ])("refuses %s, naming the line number and its text", (_name, text, line, shown) => {
    let error: unknown;
    try {
      parseProcfile(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ProcfileError);
    expect((error as ProcfileError).line).toBe(line);
    expect((error as Error).message).toContain(`Procfile line ${line} is malformed`);
    expect((error as Error).message).toContain(shown);
  });
});

describe("process types", () => {
  it("lets the Procfile override the buildpack's defaults type by type", () => {
    expect(mergeProcessTypes({ web: "npm start", worker: "node w.js" }, { web: "node server.js" })).toEqual({ web: "node server.js", worker: "node w.js" });
    expect(mergeProcessTypes({ web: "npm start" }, null)).toEqual({ web: "npm start" });
  });

  it.each<[ProcessTypes | null, ProcessTypes, string[]]>([
    [{ web: "a" }, {}, ["Procfile declares types -> web"]],
    [{ web: "a", worker: "b" }, { web: "c" }, ["Procfile declares types -> web, worker"]],
    [null, { web: "npm start" }, ["Procfile declares types     -> (none)", "Default types for buildpack -> web"]],
    [{ worker: "b" }, { web: "npm start" }, ["Procfile declares types     -> worker", "Default types for buildpack -> web"]],
    [null, {}, ["Procfile declares types -> (none)"]],
  ])("describes Procfile %j over defaults %j as Heroku does", (procfile, defaults, lines) => {
    expect(describeProcessTypes(procfile, defaults)).toEqual(lines);
  });
});

describe("parseReleaseYaml", () => {
  it.each<[string, string, ReturnType<typeof parseReleaseYaml>]>([
    ["an empty mapping", "---\ndefault_process_types: {}\n", { defaultProcessTypes: {}, configVars: {}, addons: [] }],
    ["no output at all", "", { defaultProcessTypes: {}, configVars: {}, addons: [] }],
    ["a bare empty document", "--- {}\n", { defaultProcessTypes: {}, configVars: {}, addons: [] }],
    [
      "process types",
      "---\ndefault_process_types:\n  web: npm start\n  worker: node worker.js\n",
      { defaultProcessTypes: { web: "npm start", worker: "node worker.js" }, configVars: {}, addons: [] },
    ],
    [
      "quoted values and keys",
      `---\ndefault_process_types:\n  "web": 'bundle exec rails s -p $PORT'\n  console: "rails c"\n`,
      { defaultProcessTypes: { web: "bundle exec rails s -p $PORT", console: "rails c" }, configVars: {}, addons: [] },
    ],
    [
      "a colon inside a command",
      "default_process_types:\n  web: gunicorn app:app\n",
      { defaultProcessTypes: { web: "gunicorn app:app" }, configVars: {}, addons: [] },
    ],
    [
      "addons and config vars",
      "---\naddons:\n  - heroku-postgresql\nconfig_vars:\n  LANG: en_US.UTF-8\ndefault_process_types: {}\n",
      { defaultProcessTypes: {}, configVars: { LANG: "en_US.UTF-8" }, addons: ["heroku-postgresql"] },
    ],
    [
      "unknown keys, skipped with their contents",
      "---\nfoo: bar\nextra:\n  nested: value\ndefault_process_types:\n  web: x\n",
      { defaultProcessTypes: { web: "x" }, configVars: {}, addons: [] },
    ],
    [
      "comments",
      "# made by a buildpack\n---\ndefault_process_types:\n  # the web\n  web: x # trailing comment\n",
      { defaultProcessTypes: { web: "x" }, configVars: {}, addons: [] },
    ],
    // Valid YAML that a subset parser once refused.
    [
      "flow mappings and lists",
      '---\ndefault_process_types: {web: "npm start", worker: node w.js}\naddons: [heroku-postgresql]\n',
      { defaultProcessTypes: { web: "npm start", worker: "node w.js" }, configVars: {}, addons: ["heroku-postgresql"] },
    ],
    ["a document indented as a whole", "  default_process_types:\n    web: x\n", { defaultProcessTypes: { web: "x" }, configVars: {}, addons: [] }],
    [
      "block scalars",
      "default_process_types:\n  web: >-\n    gunicorn\n    app:app\n",
      { defaultProcessTypes: { web: "gunicorn app:app" }, configVars: {}, addons: [] },
    ],
  ])("parses %s", (_name, text, expected) => {
    expect(parseReleaseYaml(text)).toEqual(expected);
  });

  it.each<[string, string, string]>([
    ["a key that is not one", "  web: x\nfoo\n", "line 2"],
    ["a scalar where a mapping belongs", "default_process_types: web\n", "must be a mapping"],
    ["an addons entry that is not a list item", "addons:\n  heroku-postgresql\n", "addons must be a list"],
    ["an unterminated string", "default_process_types:\n  web: 'npm start\n", "Missing closing 'quote"],
    ["a line without a colon", "default_process_types:\n  web npm start\n", "must be a mapping"],
    ["a repeated key", "default_process_types:\n  web: a\n  web: b\n", "line 3: Map keys must be unique"],
    ["a list where the document belongs", "- web\n", "expected a mapping"],
    ["a process type with a bad name", "default_process_types:\n  web 1: x\n", "invalid process type"],
    ["an empty command", "default_process_types:\n  web:\n", "has no command"],
  ])("refuses %s", (_name, text, message) => {
    expect(() => parseReleaseYaml(text)).toThrow(ReleaseYamlError);
    expect(() => parseReleaseYaml(text)).toThrow(message);
  });
});
