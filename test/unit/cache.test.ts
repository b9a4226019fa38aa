import { describe, expect, it } from "vitest";
import { Cache } from "../../src/lib/cache.ts";
import { RouterState } from "../../src/router/state.ts";

describe("a Worker instance's cache", () => {
  it("returns an entry within its lifetime and not after", () => {
    const cache = new Cache<string, number>("test", { entries: 10, lifetimeMs: 1_000 });
    cache.set("a", 1, { now: 5_000 });
    expect(cache.get("a", 5_999)).toBe(1);
    expect(cache.get("a", 6_000)).toBeUndefined();
    // An expired entry is gone, not merely hidden.
    expect(cache.size).toBe(0);
  });

  it("gives an entry a shorter lifetime of its own, never a longer one", () => {
    const cache = new Cache<string, string>("test", { entries: 10, lifetimeMs: 1_000 });
    cache.set("short", "s", { now: 0, lifetimeMs: 100 });
    cache.set("long", "l", { now: 0, lifetimeMs: 60_000 });
    expect(cache.get("short", 100)).toBeUndefined();
    expect(cache.get("long", 999)).toBe("l");
    expect(cache.get("long", 1_000)).toBeUndefined();
  });

  it("holds at most its size, forgetting the least recently used entry", () => {
    const cache = new Cache<string, number>("test", { entries: 3, lifetimeMs: 60_000 });
    cache.set("a", 1, { now: 0 });
    cache.set("b", 2, { now: 0 });
    cache.set("c", 3, { now: 0 });
    expect(cache.get("a", 1)).toBe(1); // a is now the most recently used
    cache.set("d", 4, { now: 2 });
    expect(cache.size).toBe(3);
    expect(cache.get("b", 3)).toBeUndefined();
    expect([cache.get("a", 3), cache.get("c", 3), cache.get("d", 3)]).toEqual([1, 3, 4]);
  });

  it("drops what a rule picks, and drains its live entries", () => {
    const cache = new Cache<string, { app: string }>("test", { entries: 10, lifetimeMs: 1_000 });
    cache.set("x", { app: "one" }, { now: 0 });
    cache.set("y", { app: "two" }, { now: 0 });
    cache.set("z", { app: "one" }, { now: 500 });
    cache.deleteWhere((v) => v.app === "two");
    expect(cache.drain(1_200)).toEqual([["z", { app: "one" }]]);
    expect(cache.size).toBe(0);
  });

  it("refuses a cache without room or lifetime", () => {
    expect(() => new Cache("none", { entries: 0, lifetimeMs: 1 })).toThrow(/entries/);
    expect(() => new Cache("none", { entries: 1, lifetimeMs: 0 })).toThrow(/lifetime/);
  });
});

describe("the router's state, one per Worker instance", () => {
  it("forgets only the routes of apps whose dynos changed", () => {
    const state = new RouterState();
    state.routes.set("alpha", { appId: "app-a", dynos: [] });
    state.routes.set("beta", { appId: "app-b", dynos: [] });
    state.forgetRoutes(["app-a"]);
    expect(state.routes.get("alpha")).toBeUndefined();
    expect(state.routes.get("beta")?.appId).toBe("app-b");
  });

  it("lets an app's use be written once a minute, and takes turns over its dynos", () => {
    const state = new RouterState();
    expect(state.claimTouch("app")).toBe(true);
    expect(state.claimTouch("app")).toBe(false);
    expect(state.claimTouch("other")).toBe(true);
    expect([state.nextTurn("app"), state.nextTurn("app"), state.nextTurn("app")]).toEqual([0, 1, 2]);
    expect(new RouterState().nextTurn("app")).toBe(0);
  });
});
