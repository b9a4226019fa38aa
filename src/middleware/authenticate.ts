import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { Actor, AppEnv } from "../env.ts";
import { unauthorized } from "../errors.ts";
import { authenticateForApp } from "../services/apps/apps.ts";
import { authenticateToken } from "../services/access/authorizations.ts";

/**
 * The credentials a request carries: a Bearer token, or Basic auth whose password is
 * a token (git's credential helper and `pg:credentials:rotate` send it that way).
 */
export function credentials(c: Context): { scheme: "bearer" | "basic"; user: string; secret: string } | null {
  const header = c.req.header("Authorization") ?? "";
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return { scheme: "bearer", user: "", secret: bearer[1]! };
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (basic) {
    let decoded: string;
    try {
      decoded = new TextDecoder().decode(Uint8Array.from(atob(basic[1]!), (ch) => ch.charCodeAt(0)));
    } catch {
      return null;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    return { scheme: "basic", user: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
  }
  return null;
}

/** The app an API path names (`/apps/{app}/...`), decoded, or null. */
function appOfPath(path: string): string | null {
  const segment = /^\/apps\/([^/]+)/.exec(path)?.[1];
  if (!segment) return null;
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/**
 * Resolves the request's token to an actor, or throws 401. On an app's path the app is
 * read in the same query (authenticateForApp), for the route's own lookup.
 */
export async function requireActor(c: Context<AppEnv>): Promise<Actor> {
  const creds = credentials(c);
  const app = appOfPath(c.req.path);
  const actor = !creds ? null : app ? await authenticateForApp(c.var.db, creds.secret, app) : await authenticateToken(c.var.db, creds.secret);
  if (!actor) throw unauthorized();
  return actor;
}

/** Every Platform API route past this point needs a valid, unexpired, unrevoked token. */
export const authenticate = createMiddleware<AppEnv>(async (c, next) => {
  c.set("actor", await requireActor(c));
  await next();
});
