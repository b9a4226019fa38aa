import { describe, expect, it } from "vitest";
import { markUnreachable, reachable, UNREACHABLE_HOST_MS, type WebDyno } from "../../src/router/forward.ts";

const dyno = (name: string, hostId: string): WebDyno => ({
  id: `${name}-id`,
  name,
  desired: "up",
  state: "up",
  hostId,
  hostUrl: `http://${hostId}`,
  address: null,
  port: null,
});

describe("routing around a host that stopped answering", () => {
  it("passes over its dynos for a while, then tries it again", () => {
    const now = 1_000_000;
    const all = [dyno("web.1", "lost"), dyno("web.2", "alive"), dyno("web.3", "alive-too")];
    markUnreachable("lost", now);
    expect(reachable(all, now + 1).map((d) => d.name)).toEqual(["web.2", "web.3"]);
    expect(reachable(all, now + UNREACHABLE_HOST_MS).map((d) => d.name)).toEqual(["web.1", "web.2", "web.3"]);
  });

  it("keeps every candidate when all of them are on unreachable hosts (the request gets its error from a real try)", () => {
    const now = 2_000_000;
    const all = [dyno("web.1", "gone-a"), dyno("web.2", "gone-b")];
    markUnreachable("gone-a", now);
    markUnreachable("gone-b", now);
    expect(reachable(all, now + 1)).toEqual(all);
  });
});
