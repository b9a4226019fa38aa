import { describe, expect, it } from "vitest";
import { ZERO_ID } from "../../src/git/receive-pack.ts";
import { planPush } from "../../src/services/builds/git-push.ts";

const A = "a".repeat(40);
const B = "b".repeat(40);
const cmd = (ref: string, newId = B, oldId = A) => ({ oldId, newId, ref });

describe("planPush", () => {
  it.each([
    ["main deploys", [cmd("refs/heads/main")], "refs/heads/main", [], {}],
    ["master deploys", [cmd("refs/heads/master")], "refs/heads/master", [], {}],
    ["a first push (old id zero) deploys", [cmd("refs/heads/main", B, ZERO_ID)], "refs/heads/main", [], {}],
    ["another branch is taken without a build", [cmd("refs/heads/feature")], null, ["refs/heads/feature"], {}],
    ["a tag is taken without a build", [cmd("refs/tags/v1")], null, ["refs/tags/v1"], {}],
    ["a branch named like main elsewhere is not deployed", [cmd("refs/heads/x/main")], null, ["refs/heads/x/main"], {}],
    ["deleting another branch is taken", [cmd("refs/heads/feature", ZERO_ID)], null, ["refs/heads/feature"], {}],
    ["deleting main is refused", [cmd("refs/heads/main", ZERO_ID)], null, [], { "refs/heads/main": "deleting the deployed branch is not allowed" }],
    ["main deploys next to another branch", [cmd("refs/heads/feature"), cmd("refs/heads/main")], "refs/heads/main", ["refs/heads/feature"], {}],
    [
      "only the first of main and master deploys",
      [cmd("refs/heads/main"), cmd("refs/heads/master")],
      "refs/heads/main",
      [],
      { "refs/heads/master": "only one of main or master is deployed per push (refs/heads/main was)" },
    ],
  ])("%s", (_label, commands, deployed, skipped, refused) => {
    const plan = planPush(commands);
    expect(plan.deploy?.ref ?? null).toBe(deployed);
    expect(plan.skipped).toEqual(skipped);
    expect(Object.fromEntries(plan.refused)).toEqual(refused);
  });
});
