import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { invalidParams } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { toLogSessionJson } from "../serializers/log-session.ts";
import { accountReachesApp } from "../services/access/app-access.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { withDb } from "../services/context.ts";
import { createLogSession, openLogStream } from "../services/logs/sessions.ts";
import { LOG_HISTORY } from "../logs/lines.ts";

/** `web`, `web.1`, `run.1234`, `router`: a process type, optionally with a dyno number. */
const dynoSelector = z.string().regex(/^[A-Za-z0-9_-]{1,30}(\.[A-Za-z0-9_-]{1,30})?$/, "expected a dyno name (web.1) or a process type (web)");

// The CLI sends `dyno` for both --dyno-name and --ps; the schema also names `dyno_name` and `type`.
const createBody = z
  .object({
    lines: z.number().int().min(0).max(LOG_HISTORY).nullable().optional(),
    tail: z.boolean().nullable().optional(),
    dyno: dynoSelector.nullable().optional(),
    dyno_name: dynoSelector.nullable().optional(),
    type: dynoSelector.nullable().optional(),
    source: z.enum(["app", "heroku"]).nullable().optional(),
  })
  .strict();

/** `POST /apps/{app}/log-sessions` (`heroku logs`): a self-authenticating URL for the app's log stream. */
export const logSessionsRoutes = new Hono<AppEnv>().post("/apps/:app/log-sessions", jsonBody(createBody), async (c) => {
  const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
  const body = c.req.valid("json");
  const selectors = [body.dyno, body.dyno_name, body.type].filter((v): v is string => !!v);
  if (selectors.length > 1) throw invalidParams("Give only one of dyno, dyno_name and type.");
  const session = await createLogSession(c.env, app.id, c.var.actor.accountId, {
    lines: body.lines ?? 100,
    tail: body.tail ?? false,
    dyno: selectors[0],
    source: body.source ?? undefined,
  });
  return c.json(toLogSessionJson(session), 201);
});

/** `GET /log-sessions/{id}?token=...`: the stream itself, authenticated by its signed token alone (the CLI sends no API token). */
export const logStreamRoutes = new Hono<AppEnv>().get("/log-sessions/:id", (c) =>
  openLogStream(c.env, {
    id: c.req.param("id"),
    token: c.req.query("token") ?? "",
    lastEventId: c.req.header("Last-Event-ID"),
    signal: c.req.raw.signal,
    waitUntil: (p) => c.executionCtx.waitUntil(p),
    reaches: (accountId, appId) => withDb(c.env, (db) => accountReachesApp(db, accountId, appId)),
  }),
);
