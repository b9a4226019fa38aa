import { describe, expect, it } from "vitest";
import { type EventData, type EventType, effectsOf, releaseKind } from "../../src/services/events/catalogue.ts";

// What follows from each kind of change, outside the database: the app's log lines in
// Heroku's words, and the marks on its charts. (That they are carried out once, and not for
// a change that rolled back, is test/workerd/events.test.ts's.)

const at = new Date("2027-01-10T12:00:00Z");
const event = <T extends EventType>(type: T, data: EventData[T], actorEmail: string | null = "a@example.com") => ({
  id: 1,
  type,
  appId: "00000000-0000-4000-8000-000000000001",
  actorEmail,
  data,
  createdAt: at,
});
const texts = (e: ReturnType<typeof event>) => effectsOf(e).lines.map((l) => `${l.source}[${l.dyno}]: ${l.text}`);

describe("the effects of each event", () => {
  it("release.created: Heroku's two lines and a mark of the release's kind; a deploy's are its build's, a pending one's wait", () => {
    const config = event("release.created", { version: 7, description: "Set GREETING config vars", status: "succeeded", cause: "config" });
    expect(texts(config)).toEqual(["app[api]: Set GREETING config vars by user a@example.com", "app[api]: Release v7 created by user a@example.com"]);
    expect(effectsOf(config).chart).toEqual([{ kind: "config", version: 7, message: "v7: Set GREETING config vars" }]);
    const rollback = event("release.created", { version: 8, description: "Rollback to v6", status: "succeeded", cause: "rollback" }, null);
    expect(texts(rollback)).toEqual(["app[api]: Rollback to v6 by dynoplane", "app[api]: Release v8 created by dynoplane"]);
    expect(effectsOf(rollback).chart.map((m) => m.kind)).toEqual(["rollback"]);
    for (const quiet of [
      event("release.created", { version: 9, description: "Deploy abc", status: "succeeded", cause: "build" }),
      event("release.created", { version: 9, description: "Deploy abc", status: "pending", cause: "build" }),
    ]) {
      expect(effectsOf(quiet)).toEqual({ lines: [], chart: [], audited: true });
    }
  });

  it("build.started, build.succeeded, build.failed: the build's lines, the deploy's release with its success", () => {
    expect(texts(event("build.started", { build_id: "b" }))).toEqual(["app[api]: Build started by user a@example.com"]);
    const ok = event("build.succeeded", { build_id: "b", version: 3, description: "Deploy 0123abcd" });
    expect(texts(ok)).toEqual([
      "app[api]: Build succeeded",
      "app[api]: Deploy 0123abcd by user a@example.com",
      "app[api]: Release v3 created by user a@example.com",
    ]);
    expect(effectsOf(ok).chart).toEqual([{ kind: "deploy", version: 3, message: "v3: Deploy 0123abcd" }]);
    expect(texts(event("build.failed", { build_id: "b", error: "no" }))).toEqual(["app[api]: Build failed"]);
  });

  it("formation.scaled, dynos.restarted, dynos.stopped, dyno.run: the line, and a mark for scaling and restarts", () => {
    const scaled = event("formation.scaled", { summary: "web@2:Basic" });
    expect(texts(scaled)).toEqual(["app[api]: Scaled to web@2:Basic by user a@example.com"]);
    expect(effectsOf(scaled).chart).toEqual([{ kind: "scale", message: "Scaled to web@2:Basic" }]);
    expect(texts(event("dynos.restarted", { selector: null }))).toEqual(["app[api]: Restart by user a@example.com"]);
    expect(effectsOf(event("dynos.restarted", { selector: "web.1" })).chart).toEqual([{ kind: "restart", message: "Restart web.1", dyno: "web.1" }]);
    expect(texts(event("dynos.stopped", { selector: "run.1234" }))).toEqual(["app[api]: Stop run.1234 by user a@example.com"]);
    expect(effectsOf(event("dynos.stopped", { selector: "web" })).chart).toEqual([]);
    expect(texts(event("dyno.run", { name: "run.1", command: "python" }))).toEqual(["app[api]: Starting process with command `python` by user a@example.com"]);
  });

  it("dyno.state_changed and dyno.vanished: observations, never audited; a crash is marked at its own time", () => {
    const crashed = event("dyno.state_changed", { name: "web.1", state: "crashed", crashed: true, exit_code: 3, at: 1234 }, null);
    expect(effectsOf(crashed)).toEqual({
      lines: [],
      chart: [{ t: 1234, kind: "crash", dyno: "web.1", message: "web.1 crashed (exit status 3)" }],
      audited: false,
    });
    expect(effectsOf(event("dyno.state_changed", { name: "web.1", state: "up", crashed: false, exit_code: null, at: 1 }, null))).toEqual({
      lines: [],
      chart: [],
      audited: false,
    });
    const vanished = event("dyno.vanished", { name: "run.7", why: "its host agent restarted" }, null);
    expect(texts(vanished)).toEqual(["heroku[run.7]: State changed from up to crashed (its host agent restarted)"]);
    expect(effectsOf(vanished).audited).toBe(false);
    expect(effectsOf(event("rollout.advanced", {}, null))).toEqual({ lines: [], chart: [], audited: false });
  });

  it("add-ons, domains, collaborators and features: the line Heroku writes", () => {
    expect(texts(event("addon.provisioned", { name: "postgresql-red-1", plan: "essential-0" }))).toEqual([
      "app[api]: Provisioning postgresql-red-1 (essential-0) by user a@example.com",
    ]);
    expect(texts(event("addon.failed", { name: "postgresql-red-1", error: "full" }))).toEqual(["app[api]: Provisioning postgresql-red-1 failed: full"]);
    expect(texts(event("addon.plan_changed", { name: "postgresql-red-1", plan: "essential-1" }))).toEqual([
      "app[api]: Changed postgresql-red-1 to essential-1 by user a@example.com",
    ]);
    expect(texts(event("addon.reset", { name: "postgresql-red-1", extensions: ["pgcrypto"] }))).toEqual([
      "app[api]: Reset postgresql-red-1 by user a@example.com",
    ]);
    expect(texts(event("domain.added", { hostname: "www.example.com" }))).toEqual(["app[api]: Added domain www.example.com by user a@example.com"]);
    expect(texts(event("domain.removed", { hostname: "www.example.com" }))).toEqual(["app[api]: Removed domain www.example.com by user a@example.com"]);
    expect(texts(event("collaborator.added", { email: "b@example.com" }))).toEqual(["app[api]: b@example.com added as a collaborator by user a@example.com"]);
    expect(texts(event("collaborator.removed", { email: "b@example.com" }))).toEqual([
      "app[api]: b@example.com removed as a collaborator by user a@example.com",
    ]);
    expect(texts(event("feature.enabled", { name: "keep-alive" }))).toEqual(["app[api]: Enable keep-alive by user a@example.com"]);
    expect(texts(event("feature.disabled", { name: "keep-alive" }))).toEqual(["app[api]: Disable keep-alive by user a@example.com"]);
  });

  it("changes with no line of their own are audited only", () => {
    for (const e of [
      event("app.created", { region: "us", stack: "heroku-24" }),
      event("app.updated", { changes: { maintenance: true } }),
      event("app.destroyed", {}),
      event("addon.destroyed", { name: "postgresql-red-1" }),
      event("addon.credentials_rotated", { name: "postgresql-red-1" }),
      event("addon.sessions_ended", { name: "postgresql-red-1", sessions: 3 }),
      event("release.phase_started", { version: 4, name: "release.1", command: "python migrate.py" }),
      event("release.decided", { version: 4, status: "succeeded" }),
      event("host.draining", { host: "h1", via: "cli" }, null),
    ]) {
      expect(effectsOf(e), e.type).toEqual({ lines: [], chart: [], audited: true });
    }
  });

  it("names a release's kind by what its description says it did", () => {
    expect(["Deploy 0123abcd", "Rollback to v2", "Set A, B config vars", "Remove A config vars", "Attach DATABASE (@ref:x)"].map(releaseKind)).toEqual([
      "deploy",
      "rollback",
      "config",
      "config",
      "release",
    ]);
  });
});
