import { DurableObject } from "cloudflare:workers";
import { withDb } from "../services/context.ts";
import type { Bindings } from "../env.ts";
import { type BuildOutcome, getBuildById } from "../services/builds/records.ts";
import { failBuild } from "../services/builds/builds.ts";

/** Lines one build keeps; past this (or MAX_OUTPUT_CHARS) further output is dropped with one notice. */
export const MAX_OUTPUT_LINES = 5_000;
/** Characters one build keeps (about a megabyte). */
export const MAX_OUTPUT_CHARS = 1024 * 1024;
/** Most lines one read hands back; readers come again for the rest. */
const READ_BATCH = 1_000;
/** How long a finished build's output stays here; afterwards it is read from Postgres. */
const KEEP_AFTER_END_MS = 24 * 3600 * 1000;
/** Slack past the build's own time limit before the control plane gives up on its host: as long again, at most a minute. */
const timeoutGraceMs = (timeoutS: number) => Math.min(60_000, timeoutS * 1000);
/** The line that marks where kept output stops. */
export const TRUNCATED_NOTICE = " !     Build output truncated: later lines were not kept.";

/** One read: lines from index `after` on, the index to continue from, and the outcome once the build has ended. */
export interface OutputChunk {
  lines: string[];
  next: number;
  outcome: BuildOutcome | null;
}

/**
 * One build's output: its lines in order and its outcome, in SQLite storage, with live
 * readers (the git push response, output stream URLs) waiting on `read`. Memory stays
 * bounded: lines are capped, readers hold nothing but a wake-up. An alarm fails a build
 * whose host never reports, and later drops the stored lines.
 */
export class BuildChannel extends DurableObject<Bindings> {
  private readonly sql = this.ctx.storage.sql;
  private readonly waiters = new Set<() => void>();

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql.exec("create table if not exists lines (idx integer primary key, text text not null)");
    this.sql.exec("create table if not exists meta (key text primary key, value text not null)");
  }

  private meta(key: string): string | null {
    return this.sql.exec<{ value: string }>("select value from meta where key = ?", key).toArray()[0]?.value ?? null;
  }

  private setMeta(key: string, value: string | number): void {
    this.sql.exec("insert into meta (key, value) values (?, ?) on conflict (key) do update set value = excluded.value", key, String(value));
  }

  private outcome(): BuildOutcome | null {
    const raw = this.meta("outcome");
    return raw ? (JSON.parse(raw) as BuildOutcome) : null;
  }

  private wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  /** Starts the channel for a build that must end within `timeoutS` seconds. */
  async open(buildId: string, timeoutS: number): Promise<void> {
    this.setMeta("build_id", buildId);
    await this.ctx.storage.setAlarm(Date.now() + timeoutS * 1000 + timeoutGraceMs(timeoutS));
  }

  /**
   * Adds lines in order; ignored once the build has ended. Host output stops at the caps;
   * the control plane's own few lines (`platform`) always get in, so a push still sees
   * how it ended.
   */
  async append(lines: string[], platform = false): Promise<void> {
    if (this.outcome() || !lines.length || (this.meta("truncated") && !platform)) return;
    let count = Number(this.meta("count") ?? 0);
    let chars = Number(this.meta("chars") ?? 0);
    for (const text of lines) {
      if (!platform && (count >= MAX_OUTPUT_LINES - 1 || chars + text.length > MAX_OUTPUT_CHARS)) {
        this.sql.exec("insert into lines (idx, text) values (?, ?)", count++, TRUNCATED_NOTICE);
        this.setMeta("truncated", 1);
        break;
      }
      this.sql.exec("insert into lines (idx, text) values (?, ?)", count++, text);
      chars += text.length;
    }
    this.setMeta("count", count);
    this.setMeta("chars", chars);
    this.wake();
  }

  /** The last `n` lines, oldest first. */
  async tail(n: number): Promise<string[]> {
    return this.sql
      .exec<{ text: string }>("select text from lines order by idx desc limit ?", n)
      .toArray()
      .map((r) => r.text)
      .reverse();
  }

  /** Records the outcome (the first one wins) and returns every line, for safekeeping in Postgres. */
  async finish(outcome: BuildOutcome): Promise<{ outcome: BuildOutcome; lines: string[] }> {
    const first = this.outcome();
    if (!first) {
      this.setMeta("outcome", JSON.stringify(outcome));
      await this.ctx.storage.setAlarm(Date.now() + KEEP_AFTER_END_MS);
      this.wake();
    }
    const lines = this.sql
      .exec<{ text: string }>("select text from lines order by idx")
      .toArray()
      .map((r) => r.text);
    return { outcome: first ?? outcome, lines };
  }

  /** Lines from `after` on; waits up to `waitMs` for some when there are none yet and the build runs. */
  async read(after: number, waitMs: number): Promise<OutputChunk> {
    const collect = (): OutputChunk => {
      const rows = this.sql.exec<{ text: string }>("select text from lines where idx >= ? order by idx limit ?", after, READ_BATCH).toArray();
      const outcome = this.outcome();
      const next = after + rows.length;
      // The outcome goes out only with the last lines, so a reader never misses any.
      const done = outcome && next >= Number(this.meta("count") ?? 0) ? outcome : null;
      return { lines: rows.map((r) => r.text), next, outcome: done };
    };
    const chunk = collect();
    if (chunk.lines.length || chunk.outcome || waitMs <= 0) return chunk;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(waitMs, 60_000));
      const waiters = this.waiters;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
    return collect();
  }

  /** Times out a build nobody reported on, or, after it ended, forgets its lines. */
  override async alarm(): Promise<void> {
    if (this.outcome()) {
      await this.ctx.storage.deleteAll();
      return;
    }
    const buildId = this.meta("build_id");
    if (!buildId) return;
    await withDb(this.env, async (db) => {
      const build = await getBuildById(db, buildId);
      // The same verb as a build its host reported failed: this channel is the build's own.
      if (build) await failBuild(db, this.env, build, "The build did not finish in time.", this);
    });
  }
}
