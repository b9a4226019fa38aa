import { LOCAL_ADDON_PG_MAJOR, pgClientTools } from "../local/pg-client.ts";
import { UsageError } from "./args.ts";

/**
 * `dynoplane pg-client [MAJOR]`: finds (or builds once, from PostgreSQL's source) the pg_dump
 * and pg_restore that Postgres backups on this machine's host agent use, and prints their
 * directory. Running it ahead of the first backup saves that backup the build's minutes.
 */
export async function run(args: string[]): Promise<number> {
  const major = args[0] === undefined ? LOCAL_ADDON_PG_MAJOR : Number(args[0]);
  if (!Number.isInteger(major) || major < 10 || major > 99) throw new UsageError(`pg-client takes a PostgreSQL major version such as 18 (got ${args[0]})`);
  console.log(await pgClientTools(major));
  return 0;
}
