import { DurableObject } from "cloudflare:workers";

/** Heroku keeps the most recent 1,500 lines of an app's log. */
export const LOG_HISTORY = 1500;

export interface StoredLine {
  id: number;
  /** Microseconds since the epoch, so ordering survives equal milliseconds. */
  ts: number;
  source: "app" | "heroku";
  dyno: string;
  text: string;
}

export interface LineInput {
  ts: number;
  source: "app" | "heroku";
  dyno: string;
  text: string;
}

export interface RecentQuery {
  limit: number;
  /** A dyno name (`web.1`) or a process type (`web`). */
  dyno?: string;
  source?: string;
  afterId?: number;
}

/**
 * One app's log: the last 1,500 lines in order, in SQLite storage so they survive
 * restarts of the Worker and of the object itself. Ids grow monotonically.
 */
export class LogChannel extends DurableObject {
  private readonly sql = this.ctx.storage.sql;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql.exec(
      "create table if not exists lines (id integer primary key autoincrement, ts integer not null, source text not null, dyno text not null, text text not null)",
    );
  }

  /** Appends lines in the order given and trims history; returns the stored lines. */
  async append(lines: LineInput[]): Promise<StoredLine[]> {
    const stored: StoredLine[] = [];
    for (const l of lines) {
      const row = this.sql
        .exec<{ id: number }>("insert into lines (ts, source, dyno, text) values (?, ?, ?, ?) returning id", l.ts, l.source, l.dyno, l.text)
        .one();
      stored.push({ id: row.id, ...l });
    }
    if (stored.length) this.sql.exec("delete from lines where id <= ?", stored[stored.length - 1]!.id - LOG_HISTORY);
    return stored;
  }

  /** The newest `limit` matching lines, oldest first. */
  async recent(q: RecentQuery): Promise<StoredLine[]> {
    const where: string[] = ["id > ?"];
    const args: (string | number)[] = [q.afterId ?? 0];
    if (q.dyno) {
      where.push(q.dyno.includes(".") ? "dyno = ?" : "(dyno = ? or dyno like ? escape '\\')");
      args.push(q.dyno);
      if (!q.dyno.includes(".")) args.push(`${q.dyno.replace(/[\\%_]/g, "\\$&")}.%`);
    }
    if (q.source) {
      where.push("source = ?");
      args.push(q.source);
    }
    const rows = this.sql
      .exec<Record<string, SqlStorageValue>>(`select id, ts, source, dyno, text from lines where ${where.join(" and ")} order by id desc limit ?`, ...args, q.limit)
      .toArray();
    return rows.reverse() as unknown as StoredLine[];
  }
}
