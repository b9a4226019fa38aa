import { Hono } from "hono";
import { verifyToken } from "../auth/signing.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { database } from "../middleware/database.ts";
import { getBuildById } from "../services/builds/records.ts";
import { buildChannel } from "../services/builds/builds.ts";

/** How long one wait for new output lasts before the stream checks in again. */
const WAIT_MS = 20_000;

/**
 * A build's `output_stream_url`: its output as plain text, line by line as it is
 * written, ending when the build ends. The URL's signature is the only credential.
 */
export const buildOutputRoutes = new Hono<AppEnv>().get("/build-output/:id", database, async (c) => {
  const id = c.req.param("id");
  await verifyToken(c.env.COMMAND_SIGNING_KEY, c.req.query("token") ?? "", "build-output", id);
  const build = await getBuildById(c.var.db, id);
  if (!build) throw new ApiError("not_found", "Couldn't find that build.", "build");
  const headers = { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff" };
  if (build.status !== "pending" && build.output) return c.body(build.output.map((l) => `${l}\n`).join(""), 200, headers);

  const channel = buildChannel(c.env, id);
  const encoder = new TextEncoder();
  let next = 0;
  // An ended build whose output is not saved yet is finishing right now; its channel has the lines.
  let idleReads = build.status === "pending" ? -Infinity : 0;
  const stream = new ReadableStream<Uint8Array>({
    // Loops until it has something: a pull that enqueues nothing is not repeated.
    async pull(controller) {
      for (;;) {
        const chunk = await channel.read(next, build.status === "pending" ? WAIT_MS : 2_000);
        next = chunk.next;
        if (chunk.lines.length) controller.enqueue(encoder.encode(chunk.lines.map((l) => `${l}\n`).join("")));
        if (chunk.outcome || (!chunk.lines.length && ++idleReads >= 2)) return controller.close();
        if (chunk.lines.length) return;
      }
    },
  });
  return c.body(stream, 200, headers);
});
