import { LOCAL_ADDON_PG_MAJOR, pgClientTools } from "../../src/local/pg-client.ts";

/**
 * The pg_dump and pg_restore the test platform's host agent runs for backups, found or
 * built (once, about two minutes) before a test waits on one: a build inside a backup's
 * wait would outlast it. `.ci/run` builds them before the suite.
 */
export const ensurePgClient = () => pgClientTools(LOCAL_ADDON_PG_MAJOR);

/** How long a first build may take on a busy machine. */
export const PG_CLIENT_TIMEOUT_MS = 900_000;
