/** How long an object remembers the keys of what it applied: far beyond any dispatcher's retry. */
const KEEP_MS = 24 * 3600 * 1000;

/**
 * An object's memory of what it has applied, by key, so an effect handed to it twice (a
 * dispatcher that died after the call and before marking it done) is applied once. In the
 * object's SQLite storage; the caller checks and applies in one synchronous step, so no
 * other call falls between.
 */
export class AppliedKeys {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("create table if not exists applied_keys (key text primary key, at integer not null)");
  }

  /** Records `key`, and whether it is new; forgets keys older than a day. */
  first(key: string, now = Date.now()): boolean {
    if (this.sql.exec("select 1 from applied_keys where key = ?", key).toArray().length) return false;
    this.sql.exec("insert into applied_keys (key, at) values (?, ?)", key, now);
    this.sql.exec("delete from applied_keys where at < ?", now - KEEP_MS);
    return true;
  }
}
