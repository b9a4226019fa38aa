import { describe, expect, it } from "vitest";
import { chooseIndexes, expandVars, indexEnv, redactUrl, scrub, urlSecrets } from "../../src/agent/buildpacks/python/lib/indexes.ts";
import { explainPipFailure } from "../../src/agent/buildpacks/python/lib/packages.ts";
import type { Dependencies } from "../../src/agent/buildpacks/python/lib/dependencies.ts";
import { CompileError } from "../../src/agent/buildpacks/lib/output.ts";
import { RequirementsError, scanRequirementFiles } from "../../src/agent/buildpacks/lib/requirements.ts";

const HOST = "https://mirror.example.com/simple";
const choose = (o: Partial<Parameters<typeof chooseIndexes>[0]>) => chooseIndexes({ sources: [], sourcesFrom: "Pipfile", config: {}, hostIndex: HOST, ...o });

describe("which index a build asks", () => {
  it("takes the host's default when the app names none", () => {
    expect(choose({})).toEqual({ primary: HOST, extra: [], trusted: [], from: "this host's default" });
    // An operator's plain-http mirror is trusted as the operator's own choice.
    expect(choose({ hostIndex: "http://10.0.0.5:3141/root/pypi/+simple" }).trusted).toEqual(["10.0.0.5:3141"]);
  });

  it("puts the Pipfile's sources first, the public index standing for the host's", () => {
    const plan = choose({
      sources: [
        { name: "pypi", url: "https://pypi.org/simple", verifySsl: true },
        { name: "internal", url: "http://${TOKEN}@pkgs.example.com:8080/simple", verifySsl: false },
      ],
      config: { TOKEN: "user:t0ken", PIP_INDEX_URL: "https://ignored.example.com/simple" },
    });
    expect(plan).toEqual({
      primary: HOST,
      extra: ["http://user:t0ken@pkgs.example.com:8080/simple"],
      trusted: ["pkgs.example.com:8080"],
      from: "Pipfile [[source]]",
    });
  });

  it("takes PIP_INDEX_URL and PIP_EXTRA_INDEX_URL config vars next", () => {
    expect(
      choose({ config: { PIP_INDEX_URL: "https://a.example.com/simple", PIP_EXTRA_INDEX_URL: "https://b.example.com/simple https://c.example.com/simple" } }),
    ).toEqual({
      primary: "https://a.example.com/simple",
      extra: ["https://b.example.com/simple", "https://c.example.com/simple"],
      trusted: [],
      from: "the PIP_INDEX_URL config var",
    });
    expect(choose({ config: { PIP_EXTRA_INDEX_URL: "https://b.example.com/simple", PIP_TRUSTED_HOST: "b.example.com" } })).toMatchObject({
      primary: HOST,
      extra: ["https://b.example.com/simple"],
      trusted: ["b.example.com"],
    });
  });

  it("refuses what is not an index URL, and a source variable that is not set", () => {
    expect(() => choose({ config: { PIP_INDEX_URL: "file:///etc" } })).toThrow("PIP_INDEX_URL must be an http or https URL");
    expect(() => choose({ sources: [{ name: "x", url: "https://${NOPE}@x.example.com/simple", verifySsl: true }] })).toThrow(CompileError);
    expect(() => expandVars("https://$NOPE@x/simple", {}, "Pipfile [[source]] x")).toThrow("Pipfile [[source]] x uses ${NOPE}, which is not set");
  });

  it("gives pip its plan through the environment", () => {
    expect(indexEnv({ primary: HOST, extra: ["https://b/simple"], trusted: ["b"], from: "" })).toEqual({
      PIP_INDEX_URL: HOST,
      PIP_EXTRA_INDEX_URL: "https://b/simple",
      PIP_TRUSTED_HOST: "b",
    });
  });
});

describe("credentials in index URLs", () => {
  it("are redacted as pip redacts them", () => {
    expect(redactUrl("https://user:pa55@pkgs.example.com/simple")).toBe("https://user:****@pkgs.example.com/simple");
    expect(redactUrl("https://tok3n@pkgs.example.com/simple")).toBe("https://****@pkgs.example.com/simple");
    expect(redactUrl("https://pkgs.example.com/simple")).toBe("https://pkgs.example.com/simple");
  });

  it("are scrubbed from any line, encoded or not", () => {
    const secrets = urlSecrets(["https://user:p%40ss-word@a.example.com/simple", "https://only-a-token@b.example.com/", "https://c.example.com/"]);
    expect(secrets).toEqual(["only-a-token", "p%40ss-word", "p@ss-word"]);
    expect(scrub("Looking in indexes: https://user:p%40ss-word@a, p@ss-word, only-a-token", secrets)).toBe(
      "Looking in indexes: https://user:****@a, ****, ****",
    );
  });
});

describe("requirements files pip reads itself", () => {
  const files: Record<string, string> = {
    "requirements.txt": "-i https://u:pw@idx.example.com/simple\n--extra-index-url https://x.example.com/simple\n-r sub/base.txt\n-c constraints.txt\nflask\n",
    "sub/base.txt": "requests --hash=sha256:00\n-e ../libs/mine\n",
    "constraints.txt": "urllib3<3\n",
  };
  const read = (rel: string) => files[rel] ?? null;

  it("follows -r and -c, names the index URL and sees local installs", () => {
    const scanned = scanRequirementFiles("requirements.txt", read);
    expect(scanned.files.map((f) => f.name)).toEqual(["requirements.txt", "sub/base.txt", "constraints.txt"]);
    expect(scanned.indexes).toEqual(["https://u:pw@idx.example.com/simple", "https://x.example.com/simple"]);
    expect(scanned.indexUrl).toBe("https://u:pw@idx.example.com/simple");
    expect(scanned.local).toBe(true);
    expect(scanRequirementFiles("constraints.txt", read).local).toBe(false);
  });

  it("refuses includes outside the app, missing ones and cycles", () => {
    expect(() => scanRequirementFiles("requirements.txt", (rel) => (rel === "requirements.txt" ? "-r ../../etc/passwd\n" : null))).toThrow(
      "requirements.txt line 1: -r ../../etc/passwd: only files inside the app can be included",
    );
    expect(() => scanRequirementFiles("requirements.txt", (rel) => (rel === "requirements.txt" ? "-c nope.txt\n" : null))).toThrow(RequirementsError);
    expect(() => scanRequirementFiles("a.txt", (rel) => (rel === "a.txt" ? "-r b.txt\n" : "-r a.txt\n"))).toThrow("includes itself: a.txt -> b.txt -> a.txt");
  });
});

describe("pip's failures, explained", () => {
  const deps = { source: "Pipfile", fileIndexUrl: null } as Dependencies;
  const plan = { primary: "https://u:pw@idx.example.com/simple", extra: [], trusted: [], from: "" };

  it("names what no version satisfies and the index asked", () => {
    const lines = [
      "Looking in indexes: https://u:****@idx.example.com/simple",
      "ERROR: Could not find a version that satisfies the requirement dp-x>=3 (from versions: 1.0)",
      "ERROR: No matching distribution found for dp-x>=3",
    ];
    expect(explainPipFailure(lines, { deps, plan }, 1)).toBe(
      "No version of dp-x>=3 is available from the package index https://u:****@idx.example.com/simple (required by Pipfile)",
    );
  });

  it("says when the index could not be reached", () => {
    const lines = [
      "WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPSConnection>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/dp-x/",
      "ERROR: No matching distribution found for dp-x",
    ];
    expect(explainPipFailure(lines, { deps, plan }, 1)).toMatch(/, which could not be reached \(required by Pipfile\)$/);
  });

  it("names a package whose hash does not match", () => {
    const lines = [
      "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.",
      "    dp-greeting==1.1 from https://idx.example.com/packages/dp_greeting-1.1-py3-none-any.whl#sha256=abcd:",
      "        Expected sha256 0000",
      "             Got        abcd",
    ];
    expect(explainPipFailure(lines, { deps: { ...deps, source: "Pipfile.lock" }, plan }, 1)).toBe(
      "dp-greeting==1.1 (expected sha256:0000, got sha256:abcd) does not match the hash in Pipfile.lock: the downloaded file is not the one that was locked",
    );
  });

  it("falls back to pip's own last error", () => {
    expect(explainPipFailure(["ERROR: Hashes are required in --require-hashes mode, but they are missing from some requirements."], { deps, plan }, 1)).toBe(
      "pip could not install the requirements from Pipfile: Hashes are required in --require-hashes mode, but they are missing from some requirements.",
    );
    expect(explainPipFailure([], { deps, plan }, 2)).toBe("pip could not install the requirements from Pipfile (exit status 2)");
  });
});
