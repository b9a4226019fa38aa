import { describe, expect, it } from "vitest";
import { pickVersion } from "../../src/agent/buildpacks/python/lib/runtimes.ts";
import {
  chooseInterpreter,
  parseRuntimeTxt,
  parseVersionSpec,
  PythonVersionError,
  type Interpreter,
  type RequestedPython,
} from "../../src/agent/buildpacks/lib/python-runtime.ts";

const py = (version: string, path = `/usr/bin/python${version.split(".").slice(0, 2).join(".")}`): Interpreter => ({ version, path });
const want = (major: number, minor: number, patch: number | null): RequestedPython => ({ major, minor, patch, source: "runtime.txt" });

describe("parseRuntimeTxt", () => {
  it.each<[string, RequestedPython]>([
    ["python-3.11.7", want(3, 11, 7)],
    ["python-3.11.7\n", want(3, 11, 7)],
    ["  python-3.12.1  \r\n", want(3, 12, 1)],
    ["python-3.11", want(3, 11, null)],
    ["python-2.7.18", want(2, 7, 18)],
    ["\uFEFFpython-3.10.13", want(3, 10, 13)],
  ])("parses %j", (text, expected) => {
    expect(parseRuntimeTxt(text)).toEqual(expected);
  });

  it.each<[string, string]>([
    ["3.11.7", "must name a version like python-3.11.7"],
    ["python3.11", "must name a version like python-3.11.7"],
    ["python-3", "must name a version like python-3.11.7"],
    ["pypy3.9-7.3.11", "PyPy is not available"],
    ["ruby-3.2.0", "not supported"],
    ["python-3.11.7\npython-3.12.0", "not supported"],
  ])("refuses %j", (text, message) => {
    expect(() => parseRuntimeTxt(text)).toThrow(PythonVersionError);
    expect(() => parseRuntimeTxt(text)).toThrow(message);
  });
});

describe("parseVersionSpec", () => {
  it("reads the bare versions of Pipfile and .python-version", () => {
    expect(parseVersionSpec("3.11", "Pipfile")).toEqual({ major: 3, minor: 11, patch: null, source: "Pipfile" });
    expect(parseVersionSpec(" 3.12.1 ", "Pipfile")).toEqual({ major: 3, minor: 12, patch: 1, source: "Pipfile" });
    expect(parseVersionSpec("3", "Pipfile")).toBeNull();
    expect(parseVersionSpec(">=3.8", "Pipfile")).toBeNull();
  });
});

describe("chooseInterpreter", () => {
  const debian = [py("3.11.2", "/usr/bin/python3.11")];
  const many = [
    py("3.11.2", "/usr/bin/python3.11"),
    py("3.9.18", "/opt/pyenv/versions/3.9.18/bin/python3.9"),
    py("3.12.1", "/opt/pyenv/versions/3.12.1/bin/python3.12"),
    py("3.11.7", "/opt/pyenv/versions/3.11.7/bin/python3.11"),
  ];

  it.each<[string, RequestedPython | null, Interpreter[], string, RegExp | null]>([
    ["the host's default when nothing is asked for", null, many, "/usr/bin/python3.11", null],
    ["an exact match", want(3, 11, 7), many, "/opt/pyenv/versions/3.11.7/bin/python3.11", null],
    ["an exact match that is the default", want(3, 11, 2), many, "/usr/bin/python3.11", null],
    ["the newest patch for a major.minor request", want(3, 11, null), many, "/opt/pyenv/versions/3.11.7/bin/python3.11", null],
    [
      "the nearest patch, with a warning",
      want(3, 11, 7),
      debian,
      "/usr/bin/python3.11",
      /^python-3\.11\.7 is not installed on this host; using python-3\.11\.2 \(same minor version\)/,
    ],
    [
      "the nearest minor, with a warning naming what is installed",
      want(3, 10, 13),
      debian,
      "/usr/bin/python3.11",
      /python-3\.10\.13 is not installed on this host \(it has 3\.11\.2\); using the nearest, python-3\.11\.2/,
    ],
    ["the newer of two equally near minors", want(3, 10, 1), [py("3.9.18"), py("3.11.2")], "/usr/bin/python3.11", /using the nearest, python-3\.11\.2/],
    ["the nearest minor among several", want(3, 13, 0), many, "/opt/pyenv/versions/3.12.1/bin/python3.12", /python-3\.13\.0 is not installed/],
    [
      "the first of equal versions (the preferred one)",
      want(3, 11, 2),
      [py("3.11.2", "/usr/bin/python3.11"), py("3.11.2", "/usr/local/bin/python3.11")],
      "/usr/bin/python3.11",
      null,
    ],
  ])("picks %s", (_name, requested, installed, expectedPath, warning) => {
    const choice = chooseInterpreter(requested, installed);
    expect(choice.interpreter.path).toBe(expectedPath);
    if (warning) expect(choice.warning).toMatch(warning);
    else expect(choice.warning).toBeNull();
  });

  it("refuses Python 2 clearly, even when an interpreter for it exists", () => {
    const installed = [...many, py("2.7.18", "/opt/pyenv/versions/2.7.18/bin/python2.7")];
    expect(() => chooseInterpreter(want(2, 7, 18), installed)).toThrow(PythonVersionError);
    expect(() => chooseInterpreter(want(2, 7, 18), installed)).toThrow(
      "python-2.7.18 (from runtime.txt) is not supported: this host builds Python 3 apps only",
    );
    expect(() => chooseInterpreter(want(4, 0, 0), installed)).toThrow("python-4.0.0 (from runtime.txt) is not supported");
  });

  it("fails when the host has no Python 3 at all", () => {
    expect(() => chooseInterpreter(null, [])).toThrow("no Python 3 interpreter is installed on this host");
    expect(() => chooseInterpreter(want(3, 11, 7), [py("2.7.18")])).toThrow("no Python 3 interpreter");
  });
});

describe("pickVersion (a runtime source's versions.txt)", () => {
  const req = (major: number, minor: number, patch: number | null) => ({ major, minor, patch, source: "runtime.txt" });
  const available = ["3.10.13", "3.11.2", "3.11.10", "3.11.9", "3.12.1", "not-a-version", "2.7.18"];

  it("takes the newest patch of the minor version asked for, by number", () => {
    expect(pickVersion(req(3, 11, null), available)).toBe("3.11.10");
    expect(pickVersion(req(3, 12, null), available)).toBe("3.12.1");
  });

  it("takes an exact version only when listed", () => {
    expect(pickVersion(req(3, 11, 9), available)).toBe("3.11.9");
    expect(pickVersion(req(3, 11, 3), available)).toBeNull();
    expect(pickVersion(req(3, 9, null), available)).toBeNull();
    expect(pickVersion(req(2, 7, null), available)).toBeNull();
  });
});
