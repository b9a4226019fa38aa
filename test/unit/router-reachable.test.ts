import { describe, expect, it } from "vitest";
import { HOST_SUSPECT_MS, reachable, type WebDyno } from "../../src/router/forward.ts";
import { RouterState, UNREACHABLE_HOST_MS } from "../../src/router/state.ts";

const dyno = (name: string, hostId: string, hostHeartbeatAt: Date | null = null): WebDyno => ({
  id: `${name}-id`,
  name,
  desired: "up",
  state: "up",
  hostId,
  hostUrl: `http://${hostId}`,
  address: null,
  port: null,
  hostHeartbeatAt,
});

describe("routing around a host that stopped answering", () => {
  it("passes over its dynos for a while, then tries it again", () => {
    const now = 1_000_000;
    const all = [dyno("web.1", "lost"), dyno("web.2", "alive"), dyno("web.3", "alive-too")];
    const state = new RouterState();
    state.markUnreachable("lost", now);
    expect(reachable(state, all, now + 1).map((d) => d.name)).toEqual(["web.2", "web.3"]);
    expect(reachable(state, all, now + UNREACHABLE_HOST_MS).map((d) => d.name)).toEqual(["web.1", "web.2", "web.3"]);
    // Another Worker instance has heard of no such failure.
    expect(reachable(new RouterState(), all, now + 1)).toHaveLength(3);
  });

  it("keeps every candidate when all of them are on unreachable hosts (the request gets its error from a real try)", () => {
    const now = 2_000_000;
    const all = [dyno("web.1", "gone-a"), dyno("web.2", "gone-b")];
    const state = new RouterState();
    state.markUnreachable("gone-a", now);
    state.markUnreachable("gone-b", now);
    expect(reachable(state, all, now + 1)).toEqual(all);
  });

  it("passes over dynos whose host has missed two heartbeats (cut off, it would answer nothing)", () => {
    const now = 3_000_000;
    const fresh = new Date(now - 1_000);
    const stale = new Date(now - HOST_SUSPECT_MS);
    const all = [dyno("web.1", "quiet", stale), dyno("web.2", "beating", fresh)];
    expect(reachable(new RouterState(), all, now).map((d) => d.name)).toEqual(["web.2"]);
    expect(reachable(new RouterState(), [dyno("web.1", "quiet", stale)], now).map((d) => d.name)).toEqual(["web.1"]);
  });
});
