import { and, eq, gt, isNull, or, sql } from "drizzle-orm";
import { generateToken, hashToken, looksLikeToken, tokenHints } from "../../auth/tokens.ts";
import type { Database } from "../../db/client.ts";
import { finishPage, isUuid, pageClauses, type Page, type SortField } from "../../db/paging.ts";
import { accounts, oauthAuthorizations, type OAuthAuthorizationRow } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import type { PageRange } from "../../lib/range.ts";
import { recordAudit } from "../events/audit.ts";

/** Longest lifetime a token may ask for (the CLI's own limit is 30 days). */
export const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;

export interface NewAuthorization {
  row: OAuthAuthorizationRow;
  /** The token in clear; only this response ever carries it. */
  token: string;
}

/** Issues a token for an account. `isDefault` makes it the account's API key, replacing any earlier one. */
export async function createAuthorization(
  db: Database,
  accountId: string,
  input: { description?: string; expiresIn?: number | null; scope?: string[]; isDefault?: boolean },
  audit: { email: string; requestId?: string },
): Promise<NewAuthorization> {
  if (input.expiresIn != null && (!Number.isInteger(input.expiresIn) || input.expiresIn <= 0 || input.expiresIn > MAX_EXPIRES_IN)) {
    throw invalidParams(`expires_in must be a whole number of seconds between 1 and ${MAX_EXPIRES_IN}.`);
  }
  const token = generateToken();
  const { prefix, suffix } = tokenHints(token);
  const tokenHash = await hashToken(token);
  return db.transaction(async (tx) => {
    if (input.isDefault) {
      await tx
        .update(oauthAuthorizations)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(oauthAuthorizations.accountId, accountId), eq(oauthAuthorizations.isDefault, true), isNull(oauthAuthorizations.revokedAt)));
    }
    const [row] = await tx
      .insert(oauthAuthorizations)
      .values({
        accountId,
        description: input.description ?? "",
        tokenHash,
        tokenPrefix: prefix,
        tokenSuffix: suffix,
        scope: input.scope?.length ? input.scope : ["global"],
        isDefault: input.isDefault ?? false,
        expiresAt: input.expiresIn ? sql`now() + make_interval(secs => ${input.expiresIn})` : null,
      })
      .returning();
    await recordAudit(tx, {
      actor: { accountId, email: audit.email },
      action: input.isDefault ? "api_key.regenerate" : "authorization.create",
      details: { authorization_id: row!.id, description: row!.description },
      requestId: audit.requestId,
    });
    return { row: row!, token };
  });
}

const live = () => and(isNull(oauthAuthorizations.revokedAt), or(isNull(oauthAuthorizations.expiresAt), gt(oauthAuthorizations.expiresAt, sql`now()`)));

/** What an Actor is made of: a token's authorization row joined to its account. */
export const actorColumns = {
  accountId: oauthAuthorizations.accountId,
  authorizationId: oauthAuthorizations.id,
  isDefault: oauthAuthorizations.isDefault,
  email: accounts.email,
};

/**
 * The authorization row of a live token with this stored form (the caller joins `accounts`
 * for actorColumns): not revoked, not expired.
 */
export const liveTokenWhere = (tokenHash: string) => and(eq(oauthAuthorizations.tokenHash, tokenHash), live());

/** The Actor a row of actorColumns names. */
export const actorOf = (row: { accountId: string; authorizationId: string; isDefault: boolean; email: string }): Actor => ({
  accountId: row.accountId,
  email: row.email,
  authorizationId: row.authorizationId,
  isDefaultKey: row.isDefault,
});

/** Resolves a bearer token to its account; null for anything malformed, unknown, expired or revoked. */
export async function authenticateToken(db: Database, token: string): Promise<Actor | null> {
  if (!looksLikeToken(token)) return null;
  const [row] = await db
    .select(actorColumns)
    .from(oauthAuthorizations)
    .innerJoin(accounts, eq(accounts.id, oauthAuthorizations.accountId))
    .where(liveTokenWhere(await hashToken(token)))
    .limit(1);
  return row ? actorOf(row) : null;
}

const sortFields: Record<string, SortField<OAuthAuthorizationRow>> = {
  id: { column: oauthAuthorizations.id, valid: isUuid, valueOf: (r) => r.id },
};
export const AUTHORIZATION_SORT_FIELDS = Object.keys(sortFields);

/** The live tokens of an account. */
export async function listAuthorizations(db: Database, actor: Actor, range: PageRange): Promise<Page<OAuthAuthorizationRow>> {
  const page = pageClauses(range, sortFields);
  const rows = await db
    .select()
    .from(oauthAuthorizations)
    .where(and(eq(oauthAuthorizations.accountId, actor.accountId), live(), page.where))
    .orderBy(page.orderBy)
    .limit(page.limit);
  return finishPage(rows, range, sortFields);
}

/** One live token of the actor's, by id, or `~` for the account's API key. */
export async function getAuthorization(db: Database, actor: Actor, idOrTilde: string): Promise<OAuthAuthorizationRow> {
  const which = idOrTilde === "~" ? eq(oauthAuthorizations.isDefault, true) : isUuid(idOrTilde) ? eq(oauthAuthorizations.id, idOrTilde) : null;
  const [row] = which
    ? await db
        .select()
        .from(oauthAuthorizations)
        .where(and(eq(oauthAuthorizations.accountId, actor.accountId), which, live()))
        .limit(1)
    : [];
  if (!row) throw new ApiError("not_found", "Couldn't find that authorization.", "authorization");
  return row;
}

/** Revokes one of the actor's tokens; it stops working at once. */
export async function revokeAuthorization(db: Database, actor: Actor, idOrTilde: string, requestId?: string): Promise<OAuthAuthorizationRow> {
  return db.transaction(async (tx) => {
    const row = await getAuthorization(tx, actor, idOrTilde);
    const [revoked] = await tx
      .update(oauthAuthorizations)
      .set({ revokedAt: sql`now()`, updatedAt: sql`now()` })
      .where(eq(oauthAuthorizations.id, row.id))
      .returning();
    await recordAudit(tx, { actor, action: "authorization.revoke", details: { authorization_id: row.id }, requestId });
    return revoked!;
  });
}

/**
 * Gives one of the actor's tokens a new secret (`heroku authorizations:rotate`): the old one
 * stops working at once; the authorization keeps its id, description, scope and lifetime
 * (counted again from now). Returns the row and the new token, shown this once.
 */
export async function regenerateAuthorization(db: Database, actor: Actor, idOrTilde: string, requestId?: string): Promise<NewAuthorization> {
  const token = generateToken();
  const { prefix, suffix } = tokenHints(token);
  const tokenHash = await hashToken(token);
  return db.transaction(async (tx) => {
    const row = await getAuthorization(tx, actor, idOrTilde);
    const [rotated] = await tx
      .update(oauthAuthorizations)
      .set({
        tokenHash,
        tokenPrefix: prefix,
        tokenSuffix: suffix,
        expiresAt: sql`now() + (${oauthAuthorizations.expiresAt} - ${oauthAuthorizations.createdAt})`,
        updatedAt: sql`now()`,
      })
      .where(eq(oauthAuthorizations.id, row.id))
      .returning();
    await recordAudit(tx, { actor, action: "authorization.rotate", details: { authorization_id: row.id }, requestId });
    return { row: rotated!, token };
  });
}

/**
 * The account's sessions (`heroku sessions`): its live tokens other than the API key,
 * which is what a `heroku login` (browser or password) makes.
 */
export async function listSessions(db: Database, actor: Actor): Promise<OAuthAuthorizationRow[]> {
  return db
    .select()
    .from(oauthAuthorizations)
    .where(and(eq(oauthAuthorizations.accountId, actor.accountId), eq(oauthAuthorizations.isDefault, false), live()))
    .orderBy(oauthAuthorizations.createdAt);
}

const noSession = () => new ApiError("not_found", "Couldn't find that session.", "session");

/**
 * Ends a session: `~` is the token of this request (`heroku logout`), an id one of the
 * account's sessions (`heroku sessions:destroy`). The API key is not a session: as on
 * Heroku it outlives them.
 */
export async function revokeSession(db: Database, actor: Actor, idOrTilde: string, requestId?: string): Promise<OAuthAuthorizationRow> {
  const id = idOrTilde === "~" ? actor.authorizationId : idOrTilde;
  if (!isUuid(id)) throw noSession();
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select()
      .from(oauthAuthorizations)
      .where(and(eq(oauthAuthorizations.id, id), eq(oauthAuthorizations.accountId, actor.accountId), eq(oauthAuthorizations.isDefault, false), live()))
      .limit(1);
    if (!row) throw noSession();
    const [revoked] = await tx
      .update(oauthAuthorizations)
      .set({ revokedAt: sql`now()`, updatedAt: sql`now()` })
      .where(eq(oauthAuthorizations.id, row.id))
      .returning();
    await recordAudit(tx, { actor, action: "session.revoke", details: { authorization_id: row.id }, requestId });
    return revoked!;
  });
}
