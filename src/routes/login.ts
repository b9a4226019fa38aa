import { Hono, type Context } from "hono";
import { z } from "zod";
import { verifyPollToken } from "../auth/login-handoff.ts";
import { clocksOf } from "../lib/clocks.ts";
import type { Database } from "../db/client.ts";
import { withDb } from "../services/context.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { credentials } from "../middleware/authenticate.ts";
import { claimPoll, collectAttempt, createLoginAttempt, type PollOutcome } from "../services/access/login-attempts.ts";

/** How often the waiting CLI's attempt is looked at. */
const POLL_INTERVAL_MS = 1000;

const startBody = z
  .object({
    description: z
      .string()
      .max(255)
      .refine((s) => !s.includes("\u0000"), "must not contain a NUL character")
      .optional(),
  })
  .strict();

const refused = () => new ApiError("unauthorized", "This login request is invalid, expired or already used. Run heroku login again.");

/** What the CLI reads at the end of its wait: `access_token`, or `error`, which it prints. */
function answerFor(outcome: PollOutcome): Record<string, string> {
  if (outcome.kind === "approved") return { access_token: outcome.token };
  if (outcome.kind === "denied") return { error: "The login was denied in the browser." };
  return { error: "The login request expired. Run heroku login again." };
}

/** Runs beyond the handler: in workerd through waitUntil, elsewhere as a plain promise. */
function keepRunning(c: Context<AppEnv>, work: Promise<void>) {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    void work;
  }
}

/**
 * The CLI's long poll. 200 and a space go out at once, then a space every 20 s (LOGIN_KEEPALIVE_S; the CLI's
 * socket gives up after 60 s of silence; leading whitespace is valid JSON), then the
 * answer. The attempt is read every second on a connection of the stream's own, since
 * the request's connection closes when the handler returns.
 */
function waitForDecision(c: Context<AppEnv>, attemptId: string, expiresAt: Date): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  let gone = false;
  writer.closed.catch(() => (gone = true));
  const keepAliveMs = clocksOf(c.env).loginKeepAliveMs;
  const poll = (db: Database) =>
    (async () => {
      await writer.write(encoder.encode(" "));
      let lastWrite = Date.now();
      for (;;) {
        // A CLI that hung up gets nothing issued on its behalf.
        if (gone) return;
        const outcome = await collectAttempt(db, attemptId, c.var.requestId);
        if (outcome.kind !== "waiting" || Date.now() >= expiresAt.getTime()) {
          const answer = outcome.kind === "waiting" ? answerFor({ kind: "expired" }) : answerFor(outcome);
          await writer.write(encoder.encode(JSON.stringify(answer)));
          return;
        }
        await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
        if (Date.now() - lastWrite >= keepAliveMs) {
          await writer.write(encoder.encode(" "));
          lastWrite = Date.now();
        }
      }
    })();
  const work = withDb(c.env, poll)
    .catch((err) => {
      if (!gone) console.error(JSON.stringify({ request_id: c.var.requestId, login_poll_failed: String(err) }));
    })
    .finally(() => writer.close().catch(() => {}));
  keepRunning(c, work);
  return new Response(readable, {
    status: 200,
    // Compression would hold the keep-alive spaces back in the compressor: `identity` and
    // `no-transform` keep the edge (and its local emulation) from compressing this answer.
    headers: { "Content-Type": "application/json; charset=utf-8", "Content-Encoding": "identity", "Cache-Control": "no-store, no-transform" },
  });
}

/**
 * `POST /auth` and the CLI's wait for the browser's answer: Heroku's cli-auth handoff that
 * `heroku login` speaks. Neither needs an API token; the poll token is the credential.
 */
export const loginHandoffRoutes = new Hono<AppEnv>()
  .post("/auth", jsonBody(startBody), async (c) => {
    const description = c.req.valid("json").description ?? "Heroku CLI login";
    const { attempt, browserId, token } = await createLoginAttempt(c.var.db, c.env.COMMAND_SIGNING_KEY, description);
    c.header("Cache-Control", "no-store");
    return c.json({ browser_url: `/dashboard/cli-login/${browserId}`, cli_url: `/auth/cli/${attempt.id}`, token });
  })
  .get("/auth/cli/:attempt", async (c) => {
    const creds = credentials(c);
    if (creds?.scheme !== "bearer") throw refused();
    const attemptId = c.req.param("attempt");
    let jtiHash: string;
    try {
      jtiHash = await verifyPollToken(c.env.COMMAND_SIGNING_KEY, creds.secret, attemptId);
    } catch {
      throw refused();
    }
    const attempt = await claimPoll(c.var.db, attemptId, jtiHash);
    if (!attempt) throw refused();
    return waitForDecision(c, attempt.id, attempt.expiresAt);
  });
