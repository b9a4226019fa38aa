import { checkAppLimit } from "../access/account-limits.ts";
import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { finishPage, isUuid, pageClauses, type Page, type SortField } from "../../db/paging.ts";
import { accounts, addons, apps, collaborators, oauthAuthorizations, type AppRow } from "../../db/schema/index.ts";
import { alias } from "drizzle-orm/pg-core";
import { hashToken, looksLikeToken } from "../../auth/tokens.ts";
import { actorColumns, actorOf, authenticateToken, liveTokenWhere } from "../access/authorizations.ts";
import type { Actor } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { APP_NAME_RE, randomAppName } from "../../lib/app-names.ts";
import type { PageRange } from "../../lib/range.ts";
import { reachableBy } from "../access/app-access.ts";
import { destroyAddon } from "../addons/addons.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";
import { cutRelease } from "./releases.ts";

export const REGIONS = ["us", "eu"] as const;
export const STACKS = ["heroku-22", "heroku-24"] as const;
/** The stack new apps get. */
export const DEFAULT_STACK: (typeof STACKS)[number] = "heroku-24";

const appNotFound = () => new ApiError("not_found", "Couldn't find that app.", "app");

/** An app as someone with access to it sees it: its owner's email, and whether they are that owner. */
export type AppAccess = AppRow & { ownerEmail: string; role: "owner" | "collaborator" };

/** What the owner-scoped lookup reads: the app, its owner's email, and the actor's collaborator row on it. */
interface AppLookup {
  app: AppRow;
  ownerEmail: string;
  collaborator: string | null;
}

/** The condition naming an app by id or name (already lowercased), or null when it can name none. */
function appNamed(key: string) {
  return isUuid(key) ? eq(apps.id, key) : APP_NAME_RE.test(key) ? eq(apps.name, key) : null;
}

/**
 * Lookups read in the same query as the request's token (authenticateForApp), each kept for
 * its request's first findAppForActor of that app and then dropped, so every later lookup
 * reads afresh. Keyed by the request's own Actor object: a row never reaches another request.
 */
const readWithToken = new WeakMap<Actor, { key: string; lookup: AppLookup | undefined }>();

/**
 * Authenticates a token and reads the app a request names in one query (one round trip
 * where there were two): the token's account, and the app as findAppForActor reads it for
 * that account. Null, as authenticateToken, for a token that is malformed, unknown, expired
 * or revoked, whatever the app. The app is checked by findAppForActor as ever.
 */
export async function authenticateForApp(db: Database, token: string, idOrName: string): Promise<Actor | null> {
  const key = idOrName.toLowerCase();
  const which = appNamed(key);
  if (!which || !looksLikeToken(token)) return authenticateToken(db, token);
  const owner = alias(accounts, "app_owner");
  const [row] = await db
    .select({ ...actorColumns, app: apps, ownerEmail: owner.email, collaborator: collaborators.id })
    .from(oauthAuthorizations)
    .innerJoin(accounts, eq(accounts.id, oauthAuthorizations.accountId))
    .leftJoin(apps, which)
    .leftJoin(owner, eq(owner.id, apps.ownerId))
    .leftJoin(collaborators, and(eq(collaborators.appId, apps.id), eq(collaborators.accountId, oauthAuthorizations.accountId)))
    .where(liveTokenWhere(await hashToken(token)))
    .limit(1);
  if (!row) return null;
  const actor = actorOf(row);
  const lookup = row.app && row.ownerEmail !== null ? { app: row.app, ownerEmail: row.ownerEmail, collaborator: row.collaborator } : undefined;
  readWithToken.set(actor, { key, lookup });
  return actor;
}

/**
 * The one owner-scoped lookup every app route goes through: the app's owner and its
 * collaborators get it; anyone else is refused as Heroku does (403), without its details.
 * With `ownerOnly` (what only the owner may do: "delete it"), a collaborator is refused too.
 */
export async function findAppForActor(db: Database, actor: Actor, idOrName: string, ownerOnly?: string): Promise<AppAccess> {
  const key = idOrName.toLowerCase();
  const which = appNamed(key);
  if (!which) throw appNotFound();
  let row: AppLookup | undefined;
  const early = readWithToken.get(actor);
  if (early?.key === key) {
    readWithToken.delete(actor);
    row = early.lookup;
  } else {
    [row] = await db
      .select({ app: apps, ownerEmail: accounts.email, collaborator: collaborators.id })
      .from(apps)
      .innerJoin(accounts, eq(accounts.id, apps.ownerId))
      .leftJoin(collaborators, and(eq(collaborators.appId, apps.id), eq(collaborators.accountId, actor.accountId)))
      .where(which)
      .limit(1);
  }
  if (!row) throw appNotFound();
  const role = row.app.ownerId === actor.accountId ? "owner" : row.collaborator ? "collaborator" : null;
  if (!role) throw new ApiError("forbidden", `You do not have access to the app ${idOrName}.`);
  if (ownerOnly && role !== "owner") throw new ApiError("forbidden", `Only the owner of ${row.app.name} (${row.ownerEmail}) can ${ownerOnly}.`);
  return { ...row.app, ownerEmail: row.ownerEmail, role };
}

function checkName(name: string) {
  if (!APP_NAME_RE.test(name)) {
    throw invalidParams(
      "Name must start with a letter, end with a letter or digit and can only contain lowercase letters, digits, and dashes (3 to 30 characters).",
    );
  }
}

/**
 * Creates an app (a random name when none is given) with its v1 "Initial release", whose
 * lines the app's log gets, and the audit row.
 */
export async function createApp(ctx: ServiceContext, input: { name?: string | null; region?: string | null; stack?: string | null }): Promise<AppRow> {
  const { db, requestId } = ctx;
  const actor = actingUser(ctx);
  if (input.name != null) checkName(input.name);
  const region = input.region ?? "us";
  if (!(REGIONS as readonly string[]).includes(region)) throw invalidParams(`Region ${region} is not available (use ${REGIONS.join(", ")}).`);
  const stack = input.stack ?? DEFAULT_STACK;
  if (!(STACKS as readonly string[]).includes(stack)) throw invalidParams(`Stack ${stack} is not available (use ${STACKS.join(", ")}).`);

  for (let attempt = 0; attempt < 5; attempt++) {
    const name = input.name ?? randomAppName();
    const created = await db.transaction(async (tx) => {
      await checkAppLimit(tx, ctx.env, actor.accountId);
      const [row] = await tx
        .insert(apps)
        .values({ name, ownerId: actor.accountId, region, stack, buildStack: stack })
        .onConflictDoNothing({ target: apps.name })
        .returning();
      if (!row) return null;
      await emit(tx, { actor, requestId }, { type: "app.created", app: row, data: { region, stack } });
      await cutRelease(tx, row, { actor, requestId }, { description: "Initial release", config: {}, cause: "initial" });
      const [fresh] = await tx.select().from(apps).where(eq(apps.id, row.id));
      return fresh!;
    });
    if (created) return created;
    if (input.name != null) throw invalidParams("Name is already taken");
  }
  throw new ApiError("conflict", "Could not find a free app name; please choose one.");
}

const sortFields: Record<string, SortField<AppRow>> = {
  name: { column: apps.name, valid: (v) => v.length <= 30, valueOf: (r) => r.name },
  id: { column: apps.id, valid: isUuid, valueOf: (r) => r.id },
};
export const APP_SORT_FIELDS = Object.keys(sortFields);

/** The actor's apps: those they own and those they collaborate on. */
export async function listApps(db: Database, actor: Actor, range: PageRange): Promise<Page<AppAccess>> {
  const page = pageClauses(range, sortFields);
  const rows = await db
    .select({ app: apps, ownerEmail: accounts.email })
    .from(apps)
    .innerJoin(accounts, eq(accounts.id, apps.ownerId))
    .where(and(reachableBy(db, actor), page.where))
    .orderBy(page.orderBy)
    .limit(page.limit);
  const access = rows.map(({ app, ownerEmail }): AppAccess => ({ ...app, ownerEmail, role: app.ownerId === actor.accountId ? "owner" : "collaborator" }));
  return finishPage(access, range, sortFields);
}

/** Renames an app, toggles maintenance or changes its build stack. */
export async function updateApp(
  db: Database,
  actor: Actor,
  app: AppRow,
  input: { name?: string; maintenance?: boolean; build_stack?: string },
  requestId?: string,
): Promise<AppRow> {
  if (input.name !== undefined) checkName(input.name);
  if (input.build_stack !== undefined && !(STACKS as readonly string[]).includes(input.build_stack)) {
    throw invalidParams(`Stack ${input.build_stack} is not available (use ${STACKS.join(", ")}).`);
  }
  return db.transaction(async (tx) => {
    if (input.name !== undefined && input.name !== app.name) {
      const [taken] = await tx.select({ id: apps.id }).from(apps).where(eq(apps.name, input.name)).limit(1);
      if (taken) throw invalidParams("Name is already taken");
    }
    const [row] = await tx
      .update(apps)
      .set({
        ...(input.name !== undefined && { name: input.name }),
        ...(input.maintenance !== undefined && { maintenance: input.maintenance }),
        ...(input.build_stack !== undefined && { buildStack: input.build_stack }),
        updatedAt: sql`now()`,
      })
      .where(eq(apps.id, app.id))
      .returning();
    const data = { id: row!.id, name: row!.name, maintenance: row!.maintenance, build_stack: { name: row!.buildStack }, stack: { name: row!.stack } };
    await emit(
      tx,
      { actor, requestId },
      {
        type: "app.updated",
        app: row!,
        data: { changes: { ...input, previous_name: app.name } },
        webhooks: [{ include: "api:app", action: "update", data: { ...data, updated_at: row!.updatedAt.toISOString() } }],
      },
    );
    return row!;
  });
}

/**
 * Deletes an app and everything it owns (config, releases, dynos). Its add-ons are destroyed
 * first, as `addons:destroy` would (their databases must not outlive it, and apps they are
 * attached to lose their config vars, with a release).
 */
export async function deleteApp(ctx: ServiceContext, app: AppRow): Promise<AppRow> {
  const actor = actingUser(ctx);
  for (const addon of await ctx.db.select({ id: addons.id }).from(addons).where(eq(addons.appId, app.id))) await destroyAddon(ctx, app, addon.id);
  return ctx.db.transaction(async (tx) => {
    await tx.delete(apps).where(eq(apps.id, app.id));
    await emit(tx, { actor, requestId: ctx.requestId }, { type: "app.destroyed", app, data: {} });
    return app;
  });
}
