import { describe, expect, it } from "vitest";
import { hostRequirements, normalizeRequirement, parseRequirements, requirementName, RequirementsError } from "../../src/agent/buildpacks/lib/requirements.ts";

/** Parses requirements.txt with other files of a fake app available to `-r`. */
function parse(text: string, files: Record<string, string> = {}) {
  return parseRequirements(text, "requirements.txt", (rel) => files[rel] ?? null);
}

describe("normalizeRequirement", () => {
  it.each<[string, string]>([
    ["flask", "flask"],
    ["Flask==2.2.2", "Flask==2.2.2"],
    ["flask >= 2.0 , < 3", "flask>=2.0,<3"],
    ["gunicorn (>=19.0)", "gunicorn>=19.0"],
    ["requests[socks, security]>=2", "requests[socks,security]>=2"],
    ['pywin32; sys_platform == "win32"', 'pywin32; sys_platform == "win32"'],
    ['importlib-metadata>=4 ; python_version < "3.10"', 'importlib-metadata>=4; python_version < "3.10"'],
    ["zope.interface~=5.4", "zope.interface~=5.4"],
    ["pkg===1.0.local", "pkg===1.0.local"],
    ["django!=4.0.*", "django!=4.0.*"],
  ])("%j → %j", (text, expected) => {
    expect(normalizeRequirement(text)).toBe(expected);
  });

  it.each<[string, string]>([
    ["-flask", "not a valid package name"],
    ["flask=2.0", "is not a version specifier"],
    ["flask 2.0", "is not a version specifier"],
    ["flask[", 'unclosed "[" in "flask["'],
    ["flask[bad extra]", "bad extras"],
    ["flask;", "empty environment marker"],
    ["flask @ https://example.com/flask.whl", "is given as a URL"],
  ])("refuses %j", (text, message) => {
    expect(() => normalizeRequirement(text)).toThrow(message);
  });

  it("names the project of a requirement, and not of a path", () => {
    expect(requirementName("gunicorn>=19")).toBe("gunicorn");
    expect(requirementName("requests[socks]==2")).toBe("requests");
    expect(requirementName("./dist/pkg.whl")).toBeNull();
    expect(requirementName(".")).toBeNull();
  });
});

describe("parseRequirements", () => {
  it.each<[string, string, string[]]>([
    ["plain names and pins", "flask\ngunicorn==20.1.0\n", ["flask", "gunicorn==20.1.0"]],
    ["comments and blank lines", "# web\nflask  # the framework\n\n   \ngunicorn\n", ["flask", "gunicorn"]],
    ["line continuations", "flask \\\n  >=2.0\n", ["flask>=2.0"]],
    ["markers and extras", 'requests[socks]>=2; python_version >= "3.8"\n', ['requests[socks]>=2; python_version >= "3.8"']],
    ["hashes after the specifier", "flask==2.2.2 --hash=sha256:abc \\\n    --hash=sha256:def\n", ["flask==2.2.2"]],
    ["the app itself and local wheels", ".\n./vendor/pkg-1.0-py3-none-any.whl\n", [".", "./vendor/pkg-1.0-py3-none-any.whl"]],
    ["CRLF endings", "flask\r\ngunicorn\r\n", ["flask", "gunicorn"]],
  ])("reads %s", (_name, text, expected) => {
    expect(parse(text).requirements).toEqual(expected);
  });

  it("follows -r includes relative to the including file, in order", () => {
    const files = { "requirements/base.txt": "flask\n-r common.txt\n", "requirements/common.txt": "gunicorn\n" };
    expect(parse("-r requirements/base.txt\npsycopg2\n", files).requirements).toEqual(["flask", "gunicorn", "psycopg2"]);
    expect(parse("--requirement=requirements/common.txt", files).requirements).toEqual(["gunicorn"]);
    expect(parse("-rrequirements/common.txt", files).requirements).toEqual(["gunicorn"]);
  });

  it("notes index options instead of failing on them", () => {
    const parsed = parse("--index-url https://pypi.org/simple\n-f ./wheels\n--pre\nflask\n");
    expect(parsed.requirements).toEqual(["flask"]);
    expect(parsed.notes).toEqual([
      "requirements.txt line 1: --index-url is ignored: builds install from the host's packages, without an index",
      "requirements.txt line 2: -f is ignored: builds install from the host's packages, without an index",
      "requirements.txt line 3: --pre is ignored: builds install from the host's packages, without an index",
    ]);
  });

  it.each<[string, string, Record<string, string>, string]>([
    ["an editable line", "flask\n-e git+https://github.com/x/y.git#egg=y\n", {}, "requirements.txt line 2: editable requirements are not supported"],
    ["an editable local path", "--editable .\n", {}, "requirements.txt line 1: editable requirements are not supported"],
    ["a VCS URL", "git+https://github.com/pallets/flask.git\n", {}, "requirements.txt line 1: git+https://github.com/pallets/flask.git needs the network"],
    ["an https URL", "https://example.com/pkg.tar.gz\n", {}, "needs the network"],
    ["a direct reference", "flask @ https://example.com/f.whl\n", {}, "requirements.txt line 1: flask is given as a URL"],
    ["a missing include", "-r other.txt\n", {}, "requirements.txt line 1: -r other.txt: other.txt does not exist"],
    ["an include outside the app", "-r ../../etc/passwd\n", {}, "only files inside the app can be included"],
    ["an absolute include", "-r /etc/passwd\n", {}, "only files inside the app can be included"],
    [
      "an include cycle",
      "-r a.txt\n",
      { "a.txt": "-r b.txt\n", "b.txt": "-r a.txt\n" },
      "b.txt line 1: -r a.txt includes itself: requirements.txt -> a.txt -> b.txt -> a.txt",
    ],
    ["a self include", "-r requirements.txt\n", {}, "includes itself"],
    ["a constraints file", "-c constraints.txt\n", {}, "constraints files are not supported"],
    ["an unknown option", "--frobnicate\n", {}, "requirements.txt line 1: unknown option --frobnicate"],
    ["-r without a file", "-r\n", {}, "-r needs a file name"],
    ["a # glued to a name (only # after a space starts a comment)", "flask#egg\n", {}, '"flask#egg" is not a valid package name'],
    ["a bad specifier", "flask\ngunicorn=20\n", {}, 'requirements.txt line 2: "=20" is not a version specifier'],
    ["a path outside the app", "../shared/pkg.whl\n", {}, "is outside the app"],
    ["a file: URL", "file:///tmp/pkg.whl\n", {}, "give local packages as relative paths"],
    [
      "an error inside an include, naming that file",
      "-r extra.txt\n",
      { "extra.txt": "flask\n\n-e .\n" },
      "extra.txt line 3: editable requirements are not supported",
    ],
  ])("refuses %s", (_name, text, files, message) => {
    expect(() => parse(text, files)).toThrow(RequirementsError);
    expect(() => parse(text, files)).toThrow(message);
  });
});

describe("hostRequirements", () => {
  it("asks for the host's psycopg2 where an app names the wheel-only psycopg2-binary", () => {
    expect(hostRequirements(["flask", "psycopg2-binary==2.9.5", 'Psycopg2_Binary>=2; python_version >= "3"', "."])).toEqual({
      requirements: ["flask", "psycopg2==2.9.5", 'psycopg2>=2; python_version >= "3"', "."],
      renamed: ["psycopg2-binary -> psycopg2", "Psycopg2_Binary -> psycopg2"],
    });
  });
});
