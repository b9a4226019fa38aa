import { describe, expect, it } from "vitest";
import { entryToRequirement, lockToRequirements, parsePipfile, PipfileError } from "../../src/agent/buildpacks/lib/pipfile.ts";
import { parse as parseToml, TomlDate, TomlError, type TomlTable } from "smol-toml";

/** The Pipfile of the Flask walkthrough, as `pipenv install` writes it. */
const WALKTHROUGH = `[[source]]
url = "https://pypi.org/simple"
verify_ssl = true
name = "pypi"

[packages]
flask = "*"
gunicorn = "*"
requests = "*"
urllib3 = "*"
bcrypt = ">=1.1"
cryptography = "==2.3"

[dev-packages]
pytest = "*"

[requires]
python_version = "3.11"
`;

// Pipfiles are read with smol-toml; these pin what dynoplane relies on from it.
describe("the TOML of Pipfiles", () => {
  it.each<[string, string, TomlTable]>([
    ["tables and strings", "[a]\nx = \"1\"\ny = 'lit\\n'\n", { a: { x: "1", y: "lit\\n" } }],
    ["escapes in basic strings", 'k = "a\\"b\\\\c\\n\\u00e9"', { k: 'a"b\\c\né' }],
    ["quoted keys", "\"my-key\" = 1\n'other key' = true", { "my-key": 1, "other key": true }],
    ["numbers and booleans", "i = 42\nf = -1.5\nu = 1_000\nb = false", { i: 42, f: -1.5, u: 1000, b: false }],
    ["inline tables", 'p = {version = ">=1", extras = ["a", "b"]}', { p: { version: ">=1", extras: ["a", "b"] } }],
    ["an empty inline table", "p = {}", { p: {} }],
    ["arrays across lines with comments", 'a = [\n  "x", # first\n  "y",\n]\n', { a: ["x", "y"] }],
    ["arrays of tables", '[[source]]\nname = "a"\n[[source]]\nname = "b"\n', { source: [{ name: "a" }, { name: "b" }] }],
    ["dotted headers", '[packages.django]\nversion = "*"\n', { packages: { django: { version: "*" } } }],
    ["comments after values and headers", "[a] # table\nx = 1 # one\n# alone\n", { a: { x: 1 } }],
    ["CRLF endings", '[a]\r\nx = "1"\r\n', { a: { x: "1" } }],
    // Valid TOML that real Pipfiles use, which a subset parser once refused.
    ["dotted keys", 'a.b = 1\n[packages]\nrequests.version = "*"\n', { a: { b: 1 }, packages: { requests: { version: "*" } } }],
    ["multi-line basic strings", 'a = """\nline one\nline two"""', { a: "line one\nline two" }],
    ["multi-line literal strings", "a = '''x\\y\n'''", { a: "x\\y\n" }],
    ["dates", "d = 1979-05-27", { d: new TomlDate("1979-05-27") }],
  ])("parses %s", (_name, text, expected) => {
    expect(parseToml(text)).toEqual(expected);
  });

  it.each<[string, string, number]>([
    ["an unterminated string", 'a = "open\nb = 1', 1],
    ["a missing =", '[a]\nx "1"', 2],
    ["a duplicate key", "x = 1\nx = 2", 2],
    ["an unterminated multi-line string", 'a = """x\n\nb = 1', 1],
    ["a value that is not one", "a = yes", 1],
    ["a date that is not one", "d = 1979-13-45", 1],
    ["garbage after a value", 'a = "x" "y"', 1],
    ["an unterminated header", "[packages\nx = 1", 1],
    ["an unterminated array", "a = [1, 2", 1],
    ["a bad escape", 'a = "\\q"', 1],
  ])("refuses %s with the line number", (_name, text, line) => {
    let error: unknown;
    try {
      parseToml(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TomlError);
    expect((error as TomlError).line).toBe(line);
  });
});

describe("parsePipfile", () => {
  it("reads the walkthrough's Pipfile", () => {
    expect(parsePipfile(WALKTHROUGH)).toEqual({
      packages: ["flask", "gunicorn", "requests", "urllib3", "bcrypt>=1.1", "cryptography==2.3"],
      devPackages: ["pytest"],
      pythonVersion: "3.11",
      sources: [{ name: "pypi", url: "https://pypi.org/simple", verifySsl: true }],
    });
  });

  it("prefers python_full_version, and allows a Pipfile without sections", () => {
    expect(parsePipfile('[requires]\npython_version = "3.11"\npython_full_version = "3.11.7"\n').pythonVersion).toBe("3.11.7");
    expect(parsePipfile("")).toEqual({ packages: [], devPackages: [], pythonVersion: null, sources: [] });
  });

  it("reads unquoted and quoted names, tables and comments", () => {
    const text = `# app deps
[packages]
"Flask-SQLAlchemy" = "==3.0.3"  # pinned
psycopg2 = {version = ">=2.9", extras = ["binary"]}
requests = {extras = ["socks"]}
pywin32 = {version = "*", sys_platform = "== 'win32'"}
tomli = {version = ">=1", markers = "python_version < '3.11'"}
both = {version = "==1", os_name = "== 'posix'", markers = "python_version >= '3.8'"}
ranged = ">=1.0,<2.0"
local = {path = "./libs/local"}

[packages.django]
version = "~=4.2"
`;
    expect(parsePipfile(text).packages).toEqual([
      "Flask-SQLAlchemy==3.0.3",
      "psycopg2[binary]>=2.9",
      "requests[socks]",
      "pywin32; sys_platform == 'win32'",
      "tomli>=1; python_version < '3.11'",
      "both==1; (python_version >= '3.8') and (os_name == 'posix')",
      "ranged>=1.0,<2.0",
      "./libs/local",
      "django~=4.2",
    ]);
  });

  it.each<[string, string]>([
    ['[packages]\nflask = "2.3"\n', 'flask: version "2.3" needs an operator, such as "==2.3"'],
    [
      '[packages]\nflask = {git = "https://github.com/pallets/flask.git"}\n',
      "flask comes from git (https://github.com/pallets/flask.git), which needs the network",
    ],
    ["[packages]\nmine = {editable = true}\n", "mine is editable, which needs a path or a version control URL"],
    ['[packages]\nmine = {path = "../elsewhere"}\n', "mine.path must stay inside the app"],
    ['[packages]\nflask = {version = "*", colour = "blue"}\n', 'flask has an unsupported key "colour"'],
    ["[packages]\nflask = 3\n", "flask must be a version string or a table"],
    ['[packages]\n"bad name!" = "*"\n', '"bad name!" is not a valid package name'],
    ['[packages]\nflask = {extras = "async"}\n', "flask.extras must be a list of names"],
    ['packages = "flask"\n', "[packages] must be a table"],
    ['[packages]\nflask = "*"\nflask = "==2"\n', "Pipfile line 3: trying to redefine an already defined table or value"],
    ['[packages\nflask = "*"\n', "Pipfile line 1"],
  ])("refuses %j", (text, message) => {
    expect(() => parsePipfile(text)).toThrow(PipfileError);
    expect(() => parsePipfile(text)).toThrow(message);
  });
});

describe("lockToRequirements", () => {
  const lock = (def: unknown, meta: unknown = { requires: { python_version: "3.11" } }) =>
    JSON.stringify({ _meta: meta, default: def, develop: { pytest: { version: "==7.0.0" } } });

  it("turns the default section into exact requirements, leaving develop out", () => {
    const text = lock({
      flask: { hashes: ["sha256:aaa"], index: "pypi", version: "==2.2.2" },
      gunicorn: { hashes: ["sha256:bbb"], version: "==20.1.0", markers: "python_version >= '3.5'" },
      requests: { extras: ["socks"], version: "==2.28.1" },
      unpinned: {},
    });
    expect(lockToRequirements(text)).toEqual({
      requirements: ["flask==2.2.2", "gunicorn==20.1.0; python_version >= '3.5'", "requests[socks]==2.28.1", "unpinned"],
      pythonVersion: "3.11",
      sources: [],
    });
  });

  it("reads python_full_version and tolerates a lock without default", () => {
    expect(lockToRequirements(lock(undefined, { requires: { python_full_version: "3.11.7" } }))).toEqual({
      requirements: [],
      pythonVersion: "3.11.7",
      sources: [],
    });
  });

  it.each<[string, string]>([
    ["{not json", "Pipfile.lock is not valid JSON"],
    ["[]", "Pipfile.lock must be a JSON object"],
    [JSON.stringify({ default: [] }), '"default" must be an object'],
    [JSON.stringify({ default: { flask: "==2" } }), "flask must be an object"],
    [JSON.stringify({ default: { dep: { git: "https://x/y.git", ref: "abc" } } }), "dep comes from git"],
    [JSON.stringify({ default: { dep: { editable: true } } }), "dep is editable"],
    [JSON.stringify({ default: { flask: { version: "2.2.2" } } }), 'version "2.2.2" needs an operator'],
  ])("refuses %j", (text, message) => {
    expect(() => lockToRequirements(text)).toThrow(PipfileError);
    expect(() => lockToRequirements(text)).toThrow(message);
  });
});

describe("entryToRequirement", () => {
  it("treats an empty version as any version", () => {
    expect(entryToRequirement("flask", "", "Pipfile")).toBe("flask");
    expect(entryToRequirement("flask", { version: "*" }, "Pipfile")).toBe("flask");
  });
});

describe("entries with the network (an index build)", () => {
  const read = (packages: string, extra = "") => {
    const notes: string[] = [];
    return { ...parsePipfile(`${extra}[packages]\n${packages}\n`, { network: true, notes }), notes };
  };

  it("turns version control, URLs, paths and editables into pip's lines", () => {
    const parsed = read(
      [
        'flask = {git = "https://github.com/pallets/flask.git", ref = "2.3.x"}',
        'mono = {git = "git+https://example.com/mono.git", ref = "v1", subdirectory = "pkgs/mono", extras = ["x"]}',
        'wheel = {file = "https://example.com/dist/wheel-1.0-py3-none-any.whl", markers = "python_version >= \'3.8\'"}',
        'mine = {path = ".", editable = true}',
        'private = {version = "==1.2", index = "internal"}',
      ].join("\n"),
      '[[source]]\nurl = "https://pypi.org/simple"\nname = "pypi"\n\n[[source]]\nurl = "https://${USER}:${TOKEN}@pkgs.example.com/simple"\nverify_ssl = false\nname = "internal"\n\n',
    );
    expect(parsed.packages).toEqual([
      "flask @ git+https://github.com/pallets/flask.git@2.3.x",
      "mono[x] @ git+https://example.com/mono.git@v1#subdirectory=pkgs/mono",
      "wheel @ https://example.com/dist/wheel-1.0-py3-none-any.whl; python_version >= '3.8'",
      ".",
      "private==1.2",
    ]);
    expect(parsed.notes).toEqual(["mine is editable in the Pipfile; the slug gets a regular install of it"]);
    expect(parsed.sources).toEqual([
      { name: "pypi", url: "https://pypi.org/simple", verifySsl: true },
      { name: "internal", url: "https://${USER}:${TOKEN}@pkgs.example.com/simple", verifySsl: false },
    ]);
  });

  it("keeps a lock's hashes, which put pip in hash-checking mode", () => {
    const text = JSON.stringify({ default: { flask: { hashes: ["sha256:aa11", "sha256:bb22"], version: "==2.2.2" } } });
    expect(lockToRequirements(text, { network: true }).requirements).toEqual(["flask==2.2.2 --hash=sha256:aa11 --hash=sha256:bb22"]);
    // Without the network the host's packages are what they are: hashes do not apply.
    expect(lockToRequirements(text).requirements).toEqual(["flask==2.2.2"]);
  });

  it.each<[string, string, string]>([
    ['flask = {git = "ftp://example.com/flask"}', "", "flask.git must be a https or http or ssh or git or file URL"],
    ['flask = {git = "https://example.com/flask.git", ref = "$(reboot)"}', "", 'flask.ref "$(reboot)" is not a branch, tag or commit'],
    ['flask = {git = "https://example.com/x.git", subdirectory = "../.."}', "", "flask.subdirectory must stay inside the repository"],
    ['flask = {file = "file:///etc/passwd"}', "", "flask.file must be a https or http URL"],
    ['flask = {version = "*", index = "nowhere"}', "", 'flask.index names "nowhere", which is not a [[source]] of the Pipfile'],
    ['flask = "*"', '[[source]]\nurl = "ftp://example.com/simple"\nname = "x"\n\n', "url must be an http or https URL"],
    ['flask = "*"', '[[source]]\nname = "x"\n\n', "needs a url"],
    ['flask = {hashes = ["md5:00"]}', "", 'flask.hashes must be a list like ["sha256:<hex>"]'],
  ])("refuses %s", (packages, extra, message) => {
    expect(() => read(packages, extra)).toThrow(PipfileError);
    expect(() => read(packages, extra)).toThrow(message);
  });
});
