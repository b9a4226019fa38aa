import type { AppEvent } from "../../metrics/reading.ts";

/**
 * What changes on the platform, one event per change, and what follows from each: the lines
 * in the app's log, the marks on its charts, and whether the change is audited. Pure; the
 * outbox (outbox.ts) records events in the transaction of their change and the dispatcher
 * carries out what `effectsOf` says.
 */
export interface EventData {
  "app.created": { region: string; stack: string };
  "app.updated": { changes: Record<string, unknown> };
  "app.destroyed": Record<string, never>;
  /** A new release; `cause` says what made it (`build`, `config`, `rollback`, `slug`, `initial`). */
  "release.created": { version: number; description: string; status: "pending" | "succeeded"; cause: string; details?: Record<string, unknown> };
  /** A release phase's dyno was started for a pending release. */
  "release.phase_started": { version: number; name: string; command: string };
  /** A pending release became current once its release phase passed. */
  "release.decided": { version: number; status: "succeeded" };
  "build.started": { build_id: string };
  /** A build released its slug (after its release phase, when it had one): the release it made. */
  "build.succeeded": { build_id: string; version: number; description: string };
  "build.failed": { build_id: string; error: string };
  "formation.scaled": { summary: string };
  "dynos.restarted": { selector: string | null };
  "dynos.stopped": { selector: string };
  "dyno.run": { name: string; command: string };
  /** A host saw a dyno change state (an observation: no audit row). */
  "dyno.state_changed": { name: string; state: string; crashed: boolean; exit_code: number | null; at: number };
  /** A one-off dyno vanished without its host reporting its end (an observation). */
  "dyno.vanished": { name: string; why: string };
  /** A release rolling through an app's dynos took its next batch (the platform's move). */
  "rollout.advanced": Record<string, never>;
  "addon.provisioned": { name: string; plan: string };
  "addon.failed": { name: string; error: string };
  "addon.destroyed": { name: string };
  "addon.plan_changed": { name: string; plan: string };
  "addon.credentials_rotated": { name: string };
  /** A database emptied (`pg:reset`), with the extensions made afresh in it. */
  "addon.reset": { name: string; extensions: string[] };
  /** A backup of a database was asked for (`pg:backups:capture`): `b001`. */
  "addon.backup_captured": { name: string; backup: string };
  /** A backup is being restored into a database (`pg:backups:restore`), replacing what it holds. */
  "addon.backup_restored": { name: string; backup: string };
  /** Another database's data is being copied into a database (`pg:copy`), replacing what it holds. */
  "addon.copied": { name: string; from: string; copy: string };
  /** Every session of a database's role ended (`pg:killall`). */
  "addon.sessions_ended": { name: string; sessions: number };
  "domain.added": { hostname: string };
  "domain.removed": { hostname: string };
  "collaborator.added": { email: string };
  "collaborator.removed": { email: string };
  "feature.enabled": { name: string };
  "feature.disabled": { name: string };
  /** Eco apps idle past their time went to sleep (the platform's move). */
  "app.slept": { dynos: string[]; at: number };
  /** A visitor's request woke a sleeping app (the platform's move). */
  "app.woken": { dynos: number };
  /** An account's eco dyno hours ran out: its dynos of this app sleep until `until`. */
  "eco.exhausted": { dynos: string[]; until: string };
  /** A Postgres add-on went over its plan's storage (writes locked) or back under. */
  "addon.storage_limited": { name: string; locked: boolean; text: string };
  /** An operator drained or undrained a host, on the dashboard or with `dynoplane hosts:drain`. */
  "host.draining": { host: string; via: "dashboard" | "cli" };
  "host.undrained": { host: string; via: "dashboard" | "cli" };
}

export type EventType = keyof EventData;

/** One recorded event, as the dispatcher reads it back. */
export interface RecordedEvent<T extends EventType = EventType> {
  id: number;
  type: T;
  appId: string | null;
  /** Who made the change (null: the platform itself). */
  actorEmail: string | null;
  data: EventData[T];
  createdAt: Date;
}

/** A line for the app's log. */
export interface EventLine {
  source: "app" | "heroku";
  dyno: string;
  text: string;
}

export interface Effects {
  lines: EventLine[];
  /** Marks on the app's charts (time: the event's, unless they say). */
  chart: (Omit<AppEvent, "t"> & { t?: number })[];
  /** Whether the change gets an audit row (observations by the platform do not). */
  audited: boolean;
}

/** What an app's log says when its owner's eco dyno hours are spent. Pure. */
export const exhaustedLine = (until: Date) => `Eco dyno hours quota exhausted: eco dynos sleep until ${until.toISOString().slice(0, 16).replace("T", " ")} UTC`;

/** Who did it, in Heroku's words for `app[api]` lines: `user a@b.c`, or the platform. */
export const byWhom = (actorEmail: string | null) => (actorEmail ? `user ${actorEmail}` : "dynoplane");

const api = (text: string): EventLine => ({ source: "app", dyno: "api", text });

/** The chart kind of a release, by what its description says it did. */
export function releaseKind(description: string): AppEvent["kind"] {
  return /^Deploy\b/.test(description) ? "deploy" : /^Rollback\b/.test(description) ? "rollback" : /config vars?$/.test(description) ? "config" : "release";
}

/** Heroku's two lines for a release that is out. */
const releaseLines = (version: number, description: string, who: string) => [api(`${description} by ${who}`), api(`Release v${version} created by ${who}`)];

const releaseMark = (version: number, description: string) => ({ kind: releaseKind(description), version, message: `v${version}: ${description}` });

/** What follows from an event outside the database. Pure. */
export function effectsOf(e: RecordedEvent): Effects {
  const who = byWhom(e.actorEmail);
  const none: Effects = { lines: [], chart: [], audited: true };
  switch (e.type) {
    case "release.created": {
      const d = e.data as EventData["release.created"];
      // A deploy's release is announced by its build's success (build.succeeded), after
      // its release phase when it has one.
      if (d.status !== "succeeded" || d.cause === "build") return none;
      return { ...none, lines: releaseLines(d.version, d.description, who), chart: [releaseMark(d.version, d.description)] };
    }
    case "build.started":
      return { ...none, lines: [api(`Build started by ${who}`)] };
    case "build.succeeded": {
      const d = e.data as EventData["build.succeeded"];
      return { ...none, lines: [api("Build succeeded"), ...releaseLines(d.version, d.description, who)], chart: [releaseMark(d.version, d.description)] };
    }
    case "build.failed":
      return { ...none, lines: [api("Build failed")] };
    case "formation.scaled": {
      const d = e.data as EventData["formation.scaled"];
      return { ...none, lines: [api(`Scaled to ${d.summary} by ${who}`)], chart: [{ kind: "scale", message: `Scaled to ${d.summary}` }] };
    }
    case "dynos.restarted": {
      const d = e.data as EventData["dynos.restarted"];
      const mark = { kind: "restart" as const, message: `Restart ${d.selector ?? "all"}`, ...(d.selector?.includes(".") ? { dyno: d.selector } : {}) };
      return { ...none, lines: [api(`Restart${d.selector ? ` ${d.selector}` : ""} by ${who}`)], chart: [mark] };
    }
    case "dynos.stopped":
      return { ...none, lines: [api(`Stop ${(e.data as EventData["dynos.stopped"]).selector} by ${who}`)] };
    case "dyno.run":
      return { ...none, lines: [api(`Starting process with command \`${(e.data as EventData["dyno.run"]).command}\` by ${who}`)] };
    case "dyno.state_changed": {
      const d = e.data as EventData["dyno.state_changed"];
      if (!d.crashed) return { ...none, audited: false };
      const status = d.exit_code === null ? "" : ` (exit status ${d.exit_code})`;
      return { lines: [], chart: [{ t: d.at, kind: "crash", dyno: d.name, message: `${d.name} crashed${status}` }], audited: false };
    }
    case "dyno.vanished": {
      const d = e.data as EventData["dyno.vanished"];
      return { lines: [{ source: "heroku", dyno: d.name, text: `State changed from up to crashed (${d.why})` }], chart: [], audited: false };
    }
    case "rollout.advanced":
      return { ...none, audited: false };
    case "app.slept": {
      const d = e.data as EventData["app.slept"];
      const lines = d.dynos.map((name): EventLine => ({ source: "heroku", dyno: name, text: "Idling" }));
      return { lines, chart: [{ t: d.at, kind: "sleep", message: "Idling: the app's dynos went to sleep" }], audited: false };
    }
    case "app.woken":
      return { lines: [], chart: [{ kind: "wake", message: "A request woke the app" }], audited: false };
    case "eco.exhausted": {
      const d = e.data as EventData["eco.exhausted"];
      return { lines: d.dynos.map((name): EventLine => ({ source: "heroku", dyno: name, text: exhaustedLine(new Date(d.until)) })), chart: [], audited: false };
    }
    case "addon.storage_limited":
      return { lines: [{ source: "app", dyno: "heroku-postgres", text: (e.data as EventData["addon.storage_limited"]).text }], chart: [], audited: false };
    case "addon.provisioned": {
      const d = e.data as EventData["addon.provisioned"];
      return { ...none, lines: [api(`Provisioning ${d.name} (${d.plan}) by ${who}`)] };
    }
    case "addon.failed": {
      const d = e.data as EventData["addon.failed"];
      return { ...none, lines: [api(`Provisioning ${d.name} failed: ${d.error}`)] };
    }
    case "addon.plan_changed": {
      const d = e.data as EventData["addon.plan_changed"];
      return { ...none, lines: [api(`Changed ${d.name} to ${d.plan} by ${who}`)] };
    }
    case "addon.backup_captured": {
      const d = e.data as EventData["addon.backup_captured"];
      return { ...none, lines: [api(`Backup ${d.backup} of ${d.name} by ${who}`)] };
    }
    case "addon.backup_restored": {
      const d = e.data as EventData["addon.backup_restored"];
      return { ...none, lines: [api(`Restore of ${d.backup} into ${d.name} by ${who}`)] };
    }
    case "addon.copied": {
      const d = e.data as EventData["addon.copied"];
      return { ...none, lines: [api(`Copy ${d.copy} of ${d.from} into ${d.name} by ${who}`)] };
    }
    case "addon.reset":
      return { ...none, lines: [api(`Reset ${(e.data as EventData["addon.reset"]).name} by ${who}`)] };
    case "domain.added":
      return { ...none, lines: [api(`Added domain ${(e.data as EventData["domain.added"]).hostname} by ${who}`)] };
    case "domain.removed":
      return { ...none, lines: [api(`Removed domain ${(e.data as EventData["domain.removed"]).hostname} by ${who}`)] };
    case "collaborator.added":
      return { ...none, lines: [api(`${(e.data as EventData["collaborator.added"]).email} added as a collaborator by ${who}`)] };
    case "collaborator.removed":
      return { ...none, lines: [api(`${(e.data as EventData["collaborator.removed"]).email} removed as a collaborator by ${who}`)] };
    case "feature.enabled":
      return { ...none, lines: [api(`Enable ${(e.data as EventData["feature.enabled"]).name} by ${who}`)] };
    case "feature.disabled":
      return { ...none, lines: [api(`Disable ${(e.data as EventData["feature.disabled"]).name} by ${who}`)] };
    default:
      return none;
  }
}
