import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { integerFlag, parseFlags, UsageError } from "../../src/cli/args.ts";

const execFileAsync = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, "../../bin/dynoplane.js");

describe("parseFlags", () => {
  const options = { port: { type: "string" }, verbose: { type: "boolean" } } as const;

  it("reads --flag value, --flag=value and switches", () => {
    expect(parseFlags(["--port", "80", "--verbose"], options).values).toEqual({ port: "80", verbose: true });
    expect(parseFlags(["--port=81"], options).values).toEqual({ port: "81" });
  });

  it.each([
    ["an unknown flag", ["--prot", "80"]],
    ["a flag without its value", ["--port"]],
    ["a value given to a switch", ["--verbose=yes"]],
    ["a stray argument", ["extra"]],
  ])("refuses %s", (_label, args) => {
    expect(() => parseFlags(args, options)).toThrow(UsageError);
  });

  it("takes as many positional arguments as the command allows", () => {
    expect(parseFlags(["a@example.com"], options, 1).positionals).toEqual(["a@example.com"]);
    expect(() => parseFlags(["a", "b"], options, 1)).toThrow(/unexpected argument: b/);
  });
});

describe("integerFlag", () => {
  it("gives the default when absent, the number when whole and in range", () => {
    expect(integerFlag(undefined, "port", 5100)).toBe(5100);
    expect(integerFlag("8080", "port", 5100, 0, 65535)).toBe(8080);
  });

  it.each(["x", "1.5", "-1", "70000", ""])("refuses %j", (value) => {
    expect(() => integerFlag(value, "port", 5100, 0, 65535)).toThrow(/--port must be a whole number from 0 to 65535/);
  });
});

describe("the dynoplane command", () => {
  // Each case is a process of its own, started together (the command's start-up is most of each).
  it.concurrent.for<[string[], RegExp]>([
    [["start", "--bogus"], /Unknown option '--bogus'[\s\S]*usage: dynoplane start \[--port N\]/],
    [["bench", "router", "--sequential", "0"], /--sequential must be a whole number of at least 1[\s\S]*usage: dynoplane bench router/],
    [["host", "--control-plane", "https://cp.example.com", "--secret", "s", "--port", "99999"], /--port must be a whole number from 0 to 65535/],
    [["host", "--control-plane", "https://cp.example.com", "--secret", "s", "--python-packages", "apt"], /--python-packages takes index or host \(got apt\)/],
    [
      ["host", "--control-plane", "https://cp.example.com", "--secret", "s", "--python-index", "file:///srv/wheels"],
      /--python-index takes an http or https URL/,
    ],
    [["host", "--control-plane", "https://cp.example.com", "--secret", "s", "--metrics-every", "0"], /--metrics-every must be a whole number from 1 to 3600/],
    [["start", "--python-index", "not a url"], /--python-index takes an http or https URL of a package index \(got not a url\)/],
  ])("exits 2 with the usage for %j, before doing anything", async ([args, message], { expect }) => {
    const result = await execFileAsync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 20_000 }).then(
      () => ({ code: 0, stderr: "" }),
      (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? "" }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
