import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { diffDynos, HEROKU_BACKOFF, restartDelayMs, type BackoffSchedule, type DynoDiff, type RunningDynoSummary } from "../../src/agent/reconcile.ts";
import type { DesiredDyno } from "../../src/protocol/host.ts";

// Fixed ids make the table readable; each letter is one dyno, each digit one instance.
const ID = { a: randomUUID(), b: randomUUID(), c: randomUUID() };
const INST = { 1: randomUUID(), 2: randomUUID(), 3: randomUUID() };
type Key = keyof typeof ID;
type Inst = keyof typeof INST;

function want(key: Key, inst: Inst, over: Partial<DesiredDyno> = {}): DesiredDyno {
  return {
    id: ID[key],
    instance: INST[inst],
    app_id: ID.c,
    app_name: "demo",
    name: `web.${key}`,
    type: "web",
    command: "node server.js",
    size: "Basic",
    memory_mb: 512,
    release_version: 1,
    slug_id: ID.c,
    env: {},
    boot_timeout_s: 60,
    ...over,
  };
}
const has = (key: Key, inst: Inst): RunningDynoSummary => ({ id: ID[key], instance: INST[inst] });

/** The diff in letters and digits: start ["a1"], replace ["b2<1"] (new < old), stop ["c"]. */
function short(diff: DynoDiff) {
  const key = (id: string) => (Object.keys(ID) as Key[]).find((k) => ID[k] === id);
  const inst = (i: string) => ([1, 2, 3] as const).find((k) => INST[k] === i);
  return {
    start: diff.start.map((d) => `${key(d.id)}${inst(d.instance)}`),
    replace: diff.replace.map((r) => `${key(r.dyno.id)}${inst(r.dyno.instance)}<${inst(r.previousInstance)}`),
    stop: diff.stop.map(key),
  };
}

describe("diffDynos", () => {
  it.each<[string, DesiredDyno[], RunningDynoSummary[], ReturnType<typeof short>]>([
    ["nothing to do when both are empty", [], [], { start: [], replace: [], stop: [] }],
    ["starts every desired dyno on an empty host", [want("a", 1), want("b", 1)], [], { start: ["a1", "b1"], replace: [], stop: [] }],
    ["stops everything when nothing is desired", [], [has("a", 1), has("b", 2)], { start: [], replace: [], stop: ["a", "b"] }],
    ["leaves a dyno alone when its instance matches", [want("a", 1)], [has("a", 1)], { start: [], replace: [], stop: [] }],
    ["replaces a dyno whose instance changed", [want("a", 2)], [has("a", 1)], { start: [], replace: ["a2<1"], stop: [] }],
    ["does all three at once", [want("a", 1), want("b", 3)], [has("b", 2), has("c", 1)], { start: ["a1"], replace: ["b3<2"], stop: ["c"] }],
    ["keeps the first of a repeated desired id", [want("a", 1), want("a", 2)], [], { start: ["a1"], replace: [], stop: [] }],
    ["compares a repeated desired id with its first entry", [want("a", 1), want("a", 2)], [has("a", 1)], { start: [], replace: [], stop: [] }],
    ["stops a repeated running id once", [], [has("a", 1), has("a", 2)], { start: [], replace: [], stop: ["a"] }],
    ["uses the first of a repeated running id", [want("a", 2)], [has("a", 1), has("a", 2)], { start: [], replace: ["a2<1"], stop: [] }],
    ["keys by id, not by name", [want("a", 1, { name: "web.1" })], [has("b", 1)], { start: ["a1"], replace: [], stop: ["b"] }],
  ])("%s", (_label, desired, running, expected) => {
    expect(short(diffDynos(desired, running))).toEqual(expected);
  });

  it("never acts twice on one id and never both starts and stops it", () => {
    const desired = [want("a", 1), want("b", 2), want("a", 3), want("c", 1)];
    const running = [has("b", 1), has("c", 1), has("b", 3)];
    const diff = diffDynos(desired, running);
    const touched = [...diff.start.map((d) => d.id), ...diff.replace.map((r) => r.dyno.id), ...diff.stop];
    expect(new Set(touched).size).toBe(touched.length);
  });

  it("hands back the desired dyno itself, with its command and env", () => {
    const dyno = want("a", 2, { command: "bin/run", env: { FOO: "bar" } });
    const diff = diffDynos([dyno], [has("a", 1)]);
    expect(diff.replace[0]!.dyno).toBe(dyno);
  });
});

describe("restartDelayMs", () => {
  const fast: BackoffSchedule = { baseMs: 100, maxMs: 1_000 };
  it.each<[number, BackoffSchedule, number]>([
    [0, fast, 0],
    [1, fast, 0], // the first crash restarts at once
    [2, fast, 100],
    [3, fast, 200],
    [4, fast, 400],
    [5, fast, 800],
    [6, fast, 1_000], // capped
    [50, fast, 1_000],
    [10_000, fast, 1_000], // no overflow to Infinity or NaN
    [1, HEROKU_BACKOFF, 0],
    [2, HEROKU_BACKOFF, 10_000],
    [9, HEROKU_BACKOFF, 20 * 60_000], // Heroku's cool-off never exceeds 20 minutes
    [Number.NaN, fast, 0],
  ])("after crash %d (%j) waits %d ms", (crashes, schedule, expected) => {
    expect(restartDelayMs(crashes, schedule)).toBe(expected);
  });

  it("never shrinks as crashes accumulate", () => {
    let last = 0;
    for (let n = 1; n < 100; n++) {
      const delay = restartDelayMs(n);
      expect(delay).toBeGreaterThanOrEqual(last);
      last = delay;
    }
    expect(last).toBe(HEROKU_BACKOFF.maxMs);
  });
});
