import { sql } from "drizzle-orm";
import { openDb } from "../db/client.ts";

/**
 * The floor `npm run bench:api` measures API routes against: a Worker that does only what
 * every authenticated API request must, on the same runtime and driver as the control
 * plane. It opens a connection to the database through its HYPERDRIVE binding, runs one
 * query, answers, and closes the connection after the answer.
 */
export default {
  async fetch(_request: Request, env: { HYPERDRIVE: Hyperdrive }, ctx: ExecutionContext): Promise<Response> {
    const handle = await openDb(env.HYPERDRIVE.connectionString);
    try {
      const result = (await handle.db.execute(sql`select 1 as one`)) as unknown as { rows: Array<{ one: number }> };
      return Response.json({ one: result.rows[0]?.one });
    } finally {
      ctx.waitUntil(handle.close());
    }
  },
};
