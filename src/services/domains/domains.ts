import { and, asc, eq, inArray, like, ne, or, sql } from "drizzle-orm";
import { parse as parseDomain } from "tldts";
import type { Database } from "../../db/client.ts";
import { isUuid } from "../../db/paging.ts";
import { apps, type DomainRow, domains } from "../../db/schema/index.ts";
import type { Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import type { AppAccess } from "../apps/apps.ts";
import { actingUser, type ServiceContext } from "../context.ts";
import { emit } from "../events/outbox.ts";
import { customHostnames, type HostnameState } from "./providers.ts";

/** The advisory lock key that serialises domain adds ("doms" in ASCII). */
const DOMAINS_LOCK = sql.raw(String(0x646f6d73));

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A hostname as stored: lower case, no trailing dot, each label a DNS label, two labels at
 * least, a top-level label that is not a number (no IP addresses), and `*.` only as the
 * whole first label. Throws `invalid_params` saying what is wrong. Pure.
 */
export function normalizeHostname(input: string): string {
  const hostname = input.trim().toLowerCase().replace(/\.$/, "");
  const bad = (why: string) => invalidParams(`${JSON.stringify(input)} is not a domain name: ${why}.`);
  if (!hostname) throw bad("it is empty");
  if (hostname.length > 253) throw bad("it is longer than 253 characters");
  const labels = hostname.split(".");
  if (labels.length < 2) throw bad("it needs at least two labels, as in www.example.com");
  labels.forEach((label, i) => {
    if (i === 0 && label === "*") return;
    if (!LABEL.test(label)) throw bad(`${JSON.stringify(label)} is not a valid label (letters, digits and inner hyphens, at most 63)`);
  });
  if (/^\d+$/.test(labels.at(-1)!)) throw bad("an IP address cannot be added; use a name");
  return hostname;
}

/** Names the platform answers itself: its API's host and every name under the apps domain. */
function reserved(hostname: string, env: Pick<Bindings, "API_HOST" | "APPS_DOMAIN">): boolean {
  const apiHost = env.API_HOST.replace(/:\d+$/, "").toLowerCase();
  const appsDomain = env.APPS_DOMAIN.toLowerCase();
  const bare = hostname.replace(/^\*\./, "");
  return hostname === apiHost || bare === appsDomain || bare.endsWith(`.${appsDomain}`) || bare === "localhost";
}

/** Whether a name is a public suffix (`com`, `co.uk`, `github.io`; an unlisted top-level name too), by the Public Suffix List. Pure. */
export function isPublicSuffix(name: string): boolean {
  return parseDomain(name, { allowPrivateDomains: true }).publicSuffix === name;
}

/**
 * Refuses a name another account's app holds or covers: a wildcard over another account's
 * domain (at any depth under it), a name under another account's wildcard, or a wildcard
 * or name that is a public suffix, which no one account may hold.
 */
async function checkOthersNames(db: Database, app: AppAccess, hostname: string): Promise<void> {
  const wildcard = hostname.startsWith("*.");
  const base = wildcard ? hostname.slice(2) : hostname;
  if (isPublicSuffix(base)) {
    throw invalidParams(
      `${base} is a public suffix (the Public Suffix List names it): ${wildcard ? "a wildcard over it" : "it"} would take names that belong to others. Add a name of yours under it.`,
    );
  }
  const parent = hostname.indexOf(".") > 0 ? `*${hostname.slice(hostname.indexOf("."))}` : null;
  const others = await db
    .select({ hostname: domains.hostname })
    .from(domains)
    .innerJoin(apps, eq(apps.id, domains.appId))
    .where(
      and(
        ne(apps.ownerId, app.ownerId),
        or(
          ...(wildcard ? [like(domains.hostname, `%.${base.replace(/[\\%_]/g, "\\$&")}`)] : []),
          ...(!wildcard && parent ? [eq(domains.hostname, parent)] : []),
          eq(domains.hostname, hostname),
        ),
      ),
    )
    .limit(1);
  if (others[0]) {
    const theirs = others[0].hostname;
    throw invalidParams(
      theirs === hostname
        ? `${hostname} is already in use by another app.`
        : wildcard
          ? `${hostname} would cover ${theirs}, which another account's app has added.`
          : `${hostname} is covered by ${theirs}, which another account's app has added.`,
    );
  }
}

export async function listDomains(db: Database, appId: string): Promise<DomainRow[]> {
  return db.select().from(domains).where(eq(domains.appId, appId)).orderBy(asc(domains.createdAt), asc(domains.id));
}

/**
 * One custom domain of the app, by id or hostname; a pending one is asked about at the edge
 * first (what `heroku domains:wait` polls), and stored as it now stands.
 */
export async function getDomain(db: Database, env: Bindings, app: AppAccess, identity: string): Promise<DomainRow> {
  const key = identity.trim().toLowerCase().replace(/\.$/, "");
  const which = isUuid(key) ? eq(domains.id, key) : eq(domains.hostname, key);
  const [row] = await db
    .select()
    .from(domains)
    .where(and(eq(domains.appId, app.id), which))
    .limit(1);
  if (!row) throw new ApiError("not_found", `Couldn't find that domain: ${identity}.`, "domain");
  if (row.status !== "pending" || !row.providerId) return row;
  const now = await customHostnames(env).refresh(row.providerId);
  const [updated] = await db
    .update(domains)
    .set({ ...stateColumns(now), updatedAt: sql`now()` })
    .where(eq(domains.id, row.id))
    .returning();
  return updated ?? row;
}

/**
 * Adds a custom domain (`heroku domains:add www.example.com`): registered at the edge, then
 * answered by the router with this app. A name the platform answers itself, one another
 * app (or this one) has, one another account's wildcard covers, a wildcard over another
 * account's names, and a public suffix are refused, and nothing changes.
 */
export async function addDomain(ctx: ServiceContext, app: AppAccess, input: string): Promise<DomainRow> {
  const actor = actingUser(ctx);
  const hostname = normalizeHostname(input);
  if (reserved(hostname, ctx.env)) throw invalidParams(`${hostname} is one of the platform's own names; add a domain of yours.`);
  await checkOthersNames(ctx.db, app, hostname);
  const [taken] = await ctx.db.select({ appId: domains.appId }).from(domains).where(eq(domains.hostname, hostname)).limit(1);
  if (taken) throw invalidParams(taken.appId === app.id ? `${hostname} is already added to ${app.name}.` : `${hostname} is already in use by another app.`);
  const provider = customHostnames(ctx.env);
  const state = await provider.add(hostname);
  try {
    const row = await ctx.db.transaction(async (tx) => {
      // Domain adds take turns, so two accounts cannot each pass the check of the other's name.
      await tx.execute(sql`select pg_advisory_xact_lock(${DOMAINS_LOCK})`);
      await checkOthersNames(tx, app, hostname);
      const [made] = await tx
        .insert(domains)
        .values({ appId: app.id, hostname, ...stateColumns(state) })
        .onConflictDoNothing()
        .returning();
      if (!made) throw invalidParams(`${hostname} is already in use by another app.`);
      await emit(tx, { actor, requestId: ctx.requestId }, { type: "domain.added", app, data: { hostname } });
      return made;
    });
    return row;
  } catch (err) {
    // Taken meanwhile: the edge forgets it again, as nothing here points at it.
    if (state.providerId) await provider.remove(state.providerId).catch(() => {});
    throw err;
  }
}

/** Removes a custom domain (`heroku domains:remove`): the edge lets it go and the router no longer answers it. */
export async function removeDomain(ctx: ServiceContext, app: AppAccess, identity: string): Promise<DomainRow> {
  const actor = actingUser(ctx);
  const row = await getDomain(ctx.db, ctx.env, app, identity);
  if (row.providerId) await customHostnames(ctx.env).remove(row.providerId);
  await ctx.db.transaction(async (tx) => {
    await tx.delete(domains).where(eq(domains.id, row.id));
    await emit(tx, { actor, requestId: ctx.requestId }, { type: "domain.removed", app, data: { hostname: row.hostname } });
  });
  return row;
}

/** The app a request's hostname is a custom domain of: the exact name, else a wildcard one level up. */
export async function appForHostname(db: Database, hostname: string): Promise<{ id: string; name: string } | null> {
  const host = hostname.toLowerCase().replace(/\.$/, "");
  const dot = host.indexOf(".");
  const candidates = dot > 0 ? [host, `*${host.slice(dot)}`] : [host];
  const rows = await db
    .select({ id: apps.id, name: apps.name, hostname: domains.hostname })
    .from(domains)
    .innerJoin(apps, eq(apps.id, domains.appId))
    .where(and(inArray(domains.hostname, candidates), eq(domains.status, "succeeded")));
  const found = rows.find((r) => r.hostname === host) ?? rows[0];
  return found ? { id: found.id, name: found.name } : null;
}

function stateColumns(s: HostnameState) {
  return { providerId: s.providerId, status: s.status, dnsTarget: s.dnsTarget, acmStatus: s.acmStatus, acmStatusReason: s.acmStatusReason };
}
