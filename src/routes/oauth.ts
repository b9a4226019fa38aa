import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { ApiError, unauthorized } from "../errors.ts";
import { rangeOf, sendPage } from "../lib/respond.ts";
import { jsonBody } from "../lib/validate.ts";
import { credentials, requireActor } from "../middleware/authenticate.ts";
import { toAuthorizationJson, toSessionJson } from "../serializers/authorization.ts";
import { authenticatePassword, getAccount } from "../services/access/accounts.ts";
import { clearFailures, clientAddressOf, isThrottled, recordFailure, throttleKeys } from "../services/access/sign-in-throttle.ts";
import {
  AUTHORIZATION_SORT_FIELDS,
  createAuthorization,
  getAuthorization,
  listAuthorizations,
  listSessions,
  regenerateAuthorization,
  revokeAuthorization,
  revokeSession,
} from "../services/access/authorizations.ts";

/** A string Postgres can store: text columns refuse NUL characters. */
const storable = (max: number) =>
  z
    .string()
    .max(max)
    .refine((s) => !s.includes("\u0000"), "must not contain a NUL character");

const createBody = z
  .object({
    description: storable(255).optional(),
    expires_in: z.number().int().positive().nullable().optional(),
    scope: z.array(storable(64)).max(16).optional(),
    client: z.unknown().optional(),
  })
  .strict();

/**
 * `POST /oauth/authorizations` creates a token. With Basic email:password (what
 * `heroku login -i` sends) it signs the person in; with a token it issues another one.
 */
export const oauthLoginRoutes = new Hono<AppEnv>().post("/oauth/authorizations", jsonBody(createBody), async (c) => {
  const body = c.req.valid("json");
  const creds = credentials(c);
  let account: Awaited<ReturnType<typeof getAccount>>;
  if (creds?.scheme === "basic" && creds.user) {
    // The same limits as the dashboard's sign-in: this is where `heroku login -i` guesses go.
    const keys = await throttleKeys(creds.user, clientAddressOf(c.req.raw, c.env.CLIENT_ADDRESS_HEADER));
    if (await isThrottled(c.var.db, [keys.pair, keys.address])) throw new ApiError("rate_limit", "Too many failed sign-ins. Try again in 15 minutes.");
    const row = await authenticatePassword(c.var.db, creds.user, creds.secret);
    if (!row) {
      await recordFailure(c.var.db, [keys.pair, keys.address]);
      throw unauthorized();
    }
    await clearFailures(c.var.db, keys.pair);
    account = row;
  } else {
    account = await getAccount(c.var.db, (await requireActor(c)).accountId);
  }
  const { row, token } = await createAuthorization(
    c.var.db,
    account.id,
    { description: body.description, expiresIn: body.expires_in, scope: body.scope },
    { email: account.email, requestId: c.var.requestId },
  );
  return c.json(toAuthorizationJson(row, account, token), 201);
});

/** Listing, reading and revoking the caller's tokens, and ending the CLI session. */
export const oauthRoutes = new Hono<AppEnv>()
  .get("/oauth/authorizations", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    const page = await listAuthorizations(c.var.db, c.var.actor, rangeOf(c, AUTHORIZATION_SORT_FIELDS));
    return sendPage(c, page, (row) => toAuthorizationJson(row, account));
  })
  .get("/oauth/authorizations/:id", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    return c.json(toAuthorizationJson(await getAuthorization(c.var.db, c.var.actor, c.req.param("id")), account));
  })
  .delete("/oauth/authorizations/:id", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    return c.json(toAuthorizationJson(await revokeAuthorization(c.var.db, c.var.actor, c.req.param("id"), c.var.requestId), account));
  })
  .post("/oauth/authorizations/:id/actions/regenerate-tokens", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    const { row, token } = await regenerateAuthorization(c.var.db, c.var.actor, c.req.param("id"), c.var.requestId);
    return c.json(toAuthorizationJson(row, account, token));
  })
  .get("/oauth/sessions", async (c) => c.json((await listSessions(c.var.db, c.var.actor)).map(toSessionJson)))
  .delete("/oauth/sessions/:id", async (c) => c.json(toSessionJson(await revokeSession(c.var.db, c.var.actor, c.req.param("id"), c.var.requestId))));
