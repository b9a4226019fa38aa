import { redactedToken } from "../auth/tokens.ts";
import type { OAuthAuthorizationRow } from "../db/schema/oauth-authorizations.ts";
import { isoTime } from "./common.ts";

/**
 * Heroku's OAuth authorization shape. The token appears in clear only when it was just
 * issued (`token`); afterwards only its redacted form exists.
 */
export function toAuthorizationJson(row: OAuthAuthorizationRow, user: { id: string; email: string; name: string | null }, token?: string) {
  const expiresIn = row.expiresAt ? Math.max(0, Math.round((row.expiresAt.getTime() - Date.now()) / 1000)) : null;
  return {
    id: row.id,
    description: row.description,
    scope: row.scope,
    access_token: { id: row.id, token: token ?? redactedToken(row.tokenPrefix, row.tokenSuffix), expires_in: expiresIn },
    client: null,
    grant: null,
    refresh_token: null,
    session: null,
    user: { id: user.id, email: user.email, full_name: user.name },
    created_at: isoTime(row.createdAt),
    updated_at: isoTime(row.updatedAt),
  };
}

/** A session (`heroku sessions`): a login's token, by its authorization's id and description. */
export function toSessionJson(row: OAuthAuthorizationRow) {
  return { id: row.id, description: row.description, created_at: isoTime(row.createdAt), updated_at: isoTime(row.updatedAt) };
}
