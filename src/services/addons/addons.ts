import { checkAddonLimit } from "../access/account-limits.ts";
import { and, asc, eq, inArray, or } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { type AddonAttachmentRow, type AddonRow, addonAttachments, addons, type AppRow, apps } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { ApiError, invalidParams } from "../../errors.ts";
import { isUuid } from "../../db/paging.ts";
import { type AddonPlan, PLANS, POSTGRES, resolvePlan } from "./catalog.ts";
import { databaseUrl, type DatabaseCredentials, postgresProvider, type PostgresProvider, type ProviderEnv } from "./providers/postgres.ts";
import { reachableBy } from "../access/app-access.ts";
import { changeConfigIn, getConfigVars } from "../apps/config-vars.ts";
import { actingUser, type ServiceContext, withDb } from "../context.ts";
import { dispatchEvents, emit } from "../events/outbox.ts";

/** What `heroku addons:create` sends. */
export interface NewAddon {
  plan: string;
  attachment?: { name?: string };
  config?: Record<string, string>;
  name?: string;
  confirm?: string;
}

/** An attachment name: a config var prefix (`DATABASE` → `DATABASE_URL`). */
const ATTACHMENT_NAME_RE = /^[A-Z][A-Z0-9_]{0,62}$/;
/** An add-on name chosen by its creator. */
const ADDON_NAME_RE = /^[a-z][a-z0-9-]{1,62}$/;

/** Heroku's `HEROKU_POSTGRESQL_<COLOR>` names, in the order they are handed out per app. */
const COLORS = ["RED", "BLUE", "GREEN", "YELLOW", "PURPLE", "ORANGE", "PINK", "GOLD", "SILVER", "BRONZE", "AMBER", "AQUA", "CRIMSON", "CYAN", "JADE", "NAVY"];
const ADJECTIVES = [
  "amorphous",
  "angular",
  "clear",
  "closed",
  "concave",
  "convex",
  "cubic",
  "curly",
  "deep",
  "elliptical",
  "flat",
  "fluffy",
  "graceful",
  "horizontal",
  "octagonal",
  "opaque",
  "parallel",
  "polished",
  "regular",
  "rigid",
  "round",
  "shallow",
  "shaped",
  "silhouetted",
  "slippery",
  "solid",
  "spherical",
  "sinuous",
  "symmetrical",
  "tapered",
  "transparent",
  "triangular",
  "vertical",
  "virtual",
];

/**
 * The config var names an attachment sets: `<NAME>_URL`, and, for an app's `DATABASE`
 * attachment (its first Postgres), the add-on's colour name too, as on Heroku.
 */
export function attachmentConfigVars(att: Pick<AddonAttachmentRow, "name">, addon: Pick<AddonRow, "color">): string[] {
  const own = `${att.name}_URL`;
  return att.name === POSTGRES.defaultAttachment ? [own, `HEROKU_POSTGRESQL_${addon.color}_URL`] : [own];
}

/**
 * Heroku charges for every heroku-postgresql plan, and a personal app's collaborators may not
 * add, remove or change paid add-ons: its owner does (the dashboard and the API alike).
 */
function requireOwner(app: AppRow, actor: Pick<Actor, "accountId">): void {
  if (app.ownerId !== actor.accountId) {
    throw new ApiError("forbidden", `Only the owner of ${app.name} can add, remove or change the plan of its heroku-postgresql add-ons (a paid add-on).`);
  }
}

/** A call on the database server; its failure is the API's `unavailable`, and nothing else changed. */
export async function serverCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError(
      "unavailable",
      `The database server did not answer; nothing was changed, try again shortly. (${String((err as Error).message ?? err).slice(0, 200)})`,
    );
  }
}

/** The provider of a service; refused when the platform is not configured to offer it. */
export function providerFor(env: ProviderEnv): PostgresProvider {
  const provider = postgresProvider(env);
  if (!provider) throw new ApiError("unavailable", "This platform offers no heroku-postgresql add-ons: its operator has not set ADDON_POSTGRES_ADMIN_URL.");
  return provider;
}

export const planOf = (a: AddonRow): AddonPlan => PLANS.find((p) => p.name === a.plan)!;

/** The add-on's resource on its server; refused while it is not provisioned. */
export function provisioned(view: AddonView): string {
  if (view.addon.state !== "provisioned" || !view.addon.providerId) throw invalidParams(`${view.addon.name} is not provisioned.`);
  return view.addon.providerId;
}

/** An add-on with its attachments, each with the app it is on. */
export interface AddonView {
  addon: AddonRow;
  app: AppRow;
  attachments: Array<{ attachment: AddonAttachmentRow; app: AppRow; configVars: string[] }>;
}

/** The add-ons billed to any of these apps, or attached to them, with their attachments. */
async function viewsWhere(db: Database, appIds: string[], addonFilter?: ReturnType<typeof eq>): Promise<AddonView[]> {
  if (!appIds.length) return [];
  const attached = await db.select({ addonId: addonAttachments.addonId }).from(addonAttachments).where(inArray(addonAttachments.appId, appIds));
  const ids = [...new Set(attached.map((a) => a.addonId))];
  const rows = await db
    .select({ addon: addons, app: apps })
    .from(addons)
    .innerJoin(apps, eq(apps.id, addons.appId))
    .where(and(or(inArray(addons.appId, appIds), ids.length ? inArray(addons.id, ids) : undefined), addonFilter))
    .orderBy(asc(addons.createdAt));
  return viewsOf(db, rows);
}

async function viewsOf(db: Database, rows: Array<{ addon: AddonRow; app: AppRow }>): Promise<AddonView[]> {
  if (!rows.length) return [];
  const atts = await db
    .select({ attachment: addonAttachments, app: apps })
    .from(addonAttachments)
    .innerJoin(apps, eq(apps.id, addonAttachments.appId))
    .where(
      inArray(
        addonAttachments.addonId,
        rows.map((r) => r.addon.id),
      ),
    )
    .orderBy(asc(addonAttachments.createdAt));
  return rows.map(({ addon, app }) => {
    const mine = atts.filter((a) => a.attachment.addonId === addon.id);
    return { addon, app, attachments: mine.map((a) => ({ ...a, configVars: attachmentConfigVars(a.attachment, addon) })) };
  });
}

/** One add-on by id, for the platform's own jobs (no caller to scope it to); null when gone. */
export async function addonView(db: Database, id: string): Promise<AddonView | null> {
  const rows = await db.select({ addon: addons, app: apps }).from(addons).innerJoin(apps, eq(apps.id, addons.appId)).where(eq(addons.id, id));
  return (await viewsOf(db, rows))[0] ?? null;
}

/** The config vars an add-on sets on its own app (`config_vars` of its JSON). */
export function addonConfigVars(view: AddonView): string[] {
  return view.attachments.filter((a) => a.attachment.appId === view.addon.appId).flatMap((a) => a.configVars);
}

/** Every add-on an account can see: those billed to or attached to the apps it owns or collaborates on. */
export async function listAddonsForActor(db: Database, actor: Actor): Promise<AddonView[]> {
  return viewsWhere(db, await reachableAppIds(db, actor));
}

/** The ids of the apps an account owns or collaborates on. */
async function reachableAppIds(db: Database, actor: Pick<Actor, "accountId">): Promise<string[]> {
  return (await db.select({ id: apps.id }).from(apps).where(reachableBy(db, actor))).map((a) => a.id);
}

/** The add-ons of one app (billed to it or attached to it). */
export async function listAddonsForApp(db: Database, app: AppRow): Promise<AddonView[]> {
  return viewsWhere(db, [app.id]);
}

/**
 * One add-on by id or name among those the account can see; with `app`, among that app's
 * (an attachment name such as `DATABASE` names its add-on too).
 */
export async function findAddon(db: Database, actor: Actor, idOrName: string, app?: AppRow): Promise<AddonView> {
  const views = app ? await listAddonsForApp(db, app) : await listAddonsForActor(db, actor);
  const upper = idOrName.toUpperCase().replace(/_URL$/, "");
  const found =
    views.find((v) => v.addon.id === idOrName || v.addon.name === idOrName) ??
    (app ? views.find((v) => v.attachments.some((a) => a.app.id === app.id && a.attachment.name === upper)) : undefined);
  if (!found) throw new ApiError("not_found", `Couldn't find that add-on: ${idOrName}.`, "addon");
  return found;
}

/** Checks an attachment name and that the app has none of that name yet. */
async function freeAttachmentName(db: Database, app: AppRow, name: string): Promise<string> {
  const upper = name.toUpperCase();
  if (!ATTACHMENT_NAME_RE.test(upper)) {
    throw invalidParams(
      `Attachment name ${JSON.stringify(name)} is not valid: it names the ${"<NAME>_URL"} config var, so it must start with a letter and hold only letters, digits and underscores.`,
    );
  }
  const [taken] = await db
    .select({ id: addonAttachments.id })
    .from(addonAttachments)
    .where(and(eq(addonAttachments.appId, app.id), eq(addonAttachments.name, upper)));
  if (taken) throw invalidParams(`The app ${app.name} already has an attachment named ${upper}.`);
  return upper;
}

/** The name an attachment gets unless one is asked for: `DATABASE` on an app without one, else the add-on's colour name. */
async function defaultAttachmentName(db: Database, app: AppRow, color: string): Promise<string> {
  const hasDatabase = (await listAddonsForApp(db, app)).some((v) =>
    v.attachments.some((a) => a.app.id === app.id && a.attachment.name === POSTGRES.defaultAttachment),
  );
  return hasDatabase ? `HEROKU_POSTGRESQL_${color}` : POSTGRES.defaultAttachment;
}

/** The first colour none of the app's Postgres add-ons uses. */
async function freeColor(db: Database, app: AppRow): Promise<string> {
  const used = new Set((await listAddonsForApp(db, app)).map((v) => v.addon.color));
  return COLORS.find((c) => !used.has(c)) ?? `${COLORS[0]}_${used.size}`;
}

function generatedName(): string {
  const adjective = ADJECTIVES[Math.floor(Math.random() * ADJECTIVES.length)]!;
  return `postgresql-${adjective}-${10000 + Math.floor(Math.random() * 90000)}`;
}

/**
 * `heroku addons:create heroku-postgresql[:plan]`: records the add-on as `provisioning` and
 * answers at once; the database is made after the answer (`--wait` polls until it is). Once
 * it is, the add-on is attached (as `DATABASE` on an app without one, else its colour name,
 * or the name asked for), the app's config gets its URL, a release records it, and the
 * app's dynos restart. A provisioning that fails leaves the add-on `deprovisioned` with the
 * reason, and nothing attached.
 */
export async function createAddon(ctx: ServiceContext, app: AppRow, input: NewAddon, fork?: Fork): Promise<{ view: AddonView; configVars: string[] }> {
  const actor = actingUser(ctx);
  requireOwner(app, actor);
  const { service, plan } = resolvePlan(input.plan);
  const provider = providerFor(ctx.env);
  if (input.name !== undefined && !ADDON_NAME_RE.test(input.name)) {
    throw invalidParams("An add-on name must start with a lowercase letter and hold only lowercase letters, digits and dashes (2 to 63 characters).");
  }
  const option = Object.keys(input.config ?? {}).find((k) => !(k === "fork" && fork));
  if (option !== undefined) throw invalidParams(`heroku-postgresql takes no provisioning option ${JSON.stringify(option)}; it takes --fork DATABASE.`);
  // A server with no room refuses at once; one that does not answer fails the provisioning, with its reason.
  await provider.checkRoom?.(plan).catch((err) => {
    if (err instanceof ApiError) throw err;
  });
  const { addon, attachmentName } = await ctx.db.transaction(async (tx) => {
    await checkAddonLimit(tx, ctx.env, app.ownerId);
    await tx.select({ id: apps.id }).from(apps).where(eq(apps.id, app.id)).for("update");
    const color = await freeColor(tx, app);
    const attachmentName = await freeAttachmentName(tx, app, input.attachment?.name ?? (await defaultAttachmentName(tx, app, color)));
    const name = input.name ?? generatedName();
    const [clash] = await tx.select({ id: addons.id }).from(addons).where(eq(addons.name, name));
    if (clash) throw invalidParams(`The add-on name ${name} is already taken.`);
    const [addon] = await tx
      .insert(addons)
      .values({
        appId: app.id,
        name,
        service: service.name,
        plan: plan.name,
        color,
        providerId: `addon_${crypto.randomUUID().replace(/-/g, "").slice(0, 20)}`,
        forkedFrom: fork?.from.addon.name ?? null,
      })
      .returning();
    await emit(tx, ctx, { type: "addon.provisioned", app, data: { name, plan: plan.name } });
    return { addon: addon!, attachmentName };
  });
  ctx.after(
    withDb(ctx.env, (db) => finishProvisioning(db, ctx.env, provider, addon, app, attachmentName, actor, ctx.requestId, fork?.fill)).catch((err) =>
      console.error(JSON.stringify({ addon_provisioning_failed: String(err), addon: addon.name })),
    ),
  );
  // The config vars it will set, as Heroku answers while it provisions.
  const configVars = attachmentConfigVars({ name: attachmentName }, addon);
  return { view: { addon, app, attachments: [] }, configVars };
}

/**
 * A new add-on made as a copy of another database (`--fork`): `fill` copies the data into
 * the new database once it is made, and attaches it (attachProvisioned) or fails it
 * (failProvisioning) when that is over.
 */
export interface Fork {
  from: AddonView;
  fill: (
    db: Database,
    env: Bindings,
    addon: AddonRow,
    creds: DatabaseCredentials,
    attachmentName: string,
    actor: Pick<Actor, "accountId" | "email">,
  ) => Promise<void>;
}

/**
 * Makes the database and attaches it (a fork's is filled first, and attached when that is
 * over); any failure marks the add-on failed and attaches nothing.
 */
export async function finishProvisioning(
  db: Database,
  env: Bindings,
  provider: PostgresProvider,
  addon: AddonRow,
  app: AppRow,
  attachmentName: string,
  actor: Pick<Actor, "accountId" | "email">,
  requestId: string | null,
  fill?: Fork["fill"],
): Promise<void> {
  let creds: DatabaseCredentials;
  try {
    creds = await provider.provision(addon.providerId!, planOf(addon));
  } catch (err) {
    await failProvisioning(db, env, addon, app, actor, "the database server did not take it", errorText(err), null);
    return;
  }
  if (fill) {
    try {
      await fill(db, env, addon, creds, attachmentName, actor);
    } catch (err) {
      await failProvisioning(db, env, addon, app, actor, "its data could not be copied", errorText(err), provider);
    }
    return;
  }
  await attachProvisioned(db, env, provider, addon, app, attachmentName, creds, actor, requestId);
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 300);

/** A provisioning that did not complete: the add-on is failed with what and why, its database (if made) dropped. */
export async function failProvisioning(
  db: Database,
  env: Bindings,
  addon: AddonRow,
  app: AppRow,
  actor: Pick<Actor, "accountId" | "email">,
  what: string,
  why: string,
  provider: PostgresProvider | null,
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .update(addons)
      .set({ state: "failed", error: `${what} (${why})`, updatedAt: new Date() })
      .where(eq(addons.id, addon.id));
    await emit(tx, { actor }, { type: "addon.failed", app, data: { name: addon.name, error: why } });
  });
  await provider?.destroy(addon.providerId!).catch(() => {});
  await dispatchEvents(db, env, { appId: app.id });
}

/**
 * Attaches a made database: the attachment, the app's config var with its URL (a release),
 * the add-on `provisioned`. One destroyed meanwhile has its database dropped instead.
 */
export async function attachProvisioned(
  db: Database,
  env: Bindings,
  provider: PostgresProvider,
  addon: AddonRow,
  app: AppRow,
  attachmentName: string,
  creds: DatabaseCredentials,
  actor: Pick<Actor, "accountId" | "email">,
  requestId: string | null,
): Promise<void> {
  const url = databaseUrl(creds);
  let done = false;
  try {
    done = await db.transaction(async (tx) => {
      const [still] = await tx.select().from(addons).where(eq(addons.id, addon.id)).for("update");
      if (still?.state !== "provisioning") return false; // destroyed meanwhile
      const [att] = await tx.insert(addonAttachments).values({ addonId: addon.id, appId: app.id, name: attachmentName }).returning();
      const vars = attachmentConfigVars(att!, addon);
      await changeConfigIn(tx, { actor, requestId }, app, Object.fromEntries(vars.map((v) => [v, url])), {
        description: `Attach ${attachmentName} (@ref:${addon.name})`,
      });
      await tx.update(addons).set({ state: "provisioned", updatedAt: new Date() }).where(eq(addons.id, addon.id));
      return true;
    });
  } catch (err) {
    await db
      .update(addons)
      .set({ state: "failed", error: `attaching it failed (${String(err).slice(0, 300)})`, updatedAt: new Date() })
      .where(eq(addons.id, addon.id));
  }
  if (!done) {
    // Destroyed (or failed) while the database was being made: it must not outlive its add-on.
    await provider.destroy(addon.providerId!).catch(() => {});
    return;
  }
  await dispatchEvents(db, env, { appId: app.id });
}

/**
 * `heroku addons:destroy`: the add-on must be billed to `app`. Its database and role are
 * dropped first (sessions ended), then every attachment's config vars go, each app with a
 * release and restarted dynos. Answers the add-on as `deprovisioned`.
 */
export async function destroyAddon(ctx: ServiceContext, app: AppRow, idOrName: string): Promise<AddonView> {
  const actor = actingUser(ctx);
  requireOwner(app, actor);
  const view = await findAddon(ctx.db, actor, idOrName, app);
  if (view.addon.appId !== app.id) {
    throw new ApiError("forbidden", `${view.addon.name} belongs to the app ${view.app.name}; destroy it there, or detach it from ${app.name}.`);
  }
  if (view.addon.providerId && view.addon.state !== "failed") await serverCall(() => providerFor(ctx.env).destroy(view.addon.providerId!));
  await ctx.db.transaction(async (tx) => {
    for (const a of view.attachments) {
      await changeConfigIn(tx, { actor, requestId: ctx.requestId }, a.app, Object.fromEntries(a.configVars.map((v) => [v, null])), {
        description: `Detach ${a.attachment.name} (@ref:${view.addon.name})`,
      });
    }
    await tx.delete(addons).where(eq(addons.id, view.addon.id));
    await emit(tx, ctx, { type: "addon.destroyed", app, data: { name: view.addon.name } });
  });
  return view;
}

/**
 * `heroku addons:attach ADDON -a OTHER [--as NAME]`: the add-on (one the account owns) is
 * attached to another app the account can reach; that app gets `<NAME>_URL`, a release and
 * restarted dynos.
 */
export async function attachAddon(ctx: ServiceContext, addonIdOrName: string, app: AppRow, name?: string): Promise<AddonAttachmentRow> {
  const actor = actingUser(ctx);
  const view = await findAddon(ctx.db, actor, addonIdOrName);
  // Its credentials go wherever it is attached: only its owner may take them to another app.
  if (view.app.ownerId !== actor.accountId) {
    throw new ApiError("forbidden", `Only the owner of ${view.app.name}, which ${view.addon.name} belongs to, can attach it to another app.`);
  }
  if (view.addon.state !== "provisioned") throw invalidParams(`${view.addon.name} is not provisioned yet.`);
  const url = await currentUrl(ctx.db, view);
  return ctx.db.transaction(async (tx) => {
    const attName = await freeAttachmentName(tx, app, name ?? (await defaultAttachmentName(tx, app, view.addon.color)));
    const [att] = await tx.insert(addonAttachments).values({ addonId: view.addon.id, appId: app.id, name: attName }).returning();
    await changeConfigIn(tx, { actor, requestId: ctx.requestId }, app, Object.fromEntries(attachmentConfigVars(att!, view.addon).map((v) => [v, url])), {
      description: `Attach ${attName} (@ref:${view.addon.name})`,
    });
    return att!;
  });
}

/**
 * `heroku addons:detach`: the attachment's config vars go, with a release and restarted dynos.
 * The attachment's app must be one the account reaches, or the add-on one it owns (an
 * owner can take its database back from any app it was attached to).
 */
export async function detachAddon(ctx: ServiceContext, attachmentId: string): Promise<{ view: AddonView; attachment: AddonView["attachments"][number] }> {
  const actor = actingUser(ctx);
  const ids = await reachableAppIds(ctx.db, actor);
  const views = await viewsWhere(ctx.db, ids);
  const mine = new Set(ids);
  for (const view of views) {
    const owned = view.app.ownerId === actor.accountId;
    const target = view.attachments.find((a) => a.attachment.id === attachmentId && (owned || mine.has(a.app.id)));
    if (!target) continue;
    await removeAttachment(ctx, view, target);
    return { view, attachment: target };
  }
  throw new ApiError("not_found", "Couldn't find that add-on attachment.", "addon_attachment");
}

/** Deletes one attachment; its app's config vars go, with a release and restarted dynos. */
async function removeAttachment(ctx: ServiceContext, view: AddonView, target: AddonView["attachments"][number]): Promise<void> {
  const actor = actingUser(ctx);
  await ctx.db.transaction(async (tx) => {
    await tx.delete(addonAttachments).where(eq(addonAttachments.id, target.attachment.id));
    await changeConfigIn(tx, { actor, requestId: ctx.requestId }, target.app, Object.fromEntries(target.configVars.map((v) => [v, null])), {
      description: `Detach ${target.attachment.name} (@ref:${view.addon.name})`,
    });
  });
}

/**
 * When `removed` loses its access to `app`: the attachments of its owner's add-ons to apps
 * the owner cannot reach but `removed` can (made while it collaborated) are removed, so a
 * former collaborator keeps no way into the owner's databases. Returns how many.
 */
export async function detachForeignAttachments(ctx: ServiceContext, app: AppRow, removed: string): Promise<number> {
  const ownerIds = new Set(await reachableAppIds(ctx.db, { accountId: app.ownerId }));
  const theirs = new Set(await reachableAppIds(ctx.db, { accountId: removed }));
  const owned = await ctx.db.select({ id: apps.id }).from(apps).where(eq(apps.ownerId, app.ownerId));
  let count = 0;
  for (const view of await viewsWhere(
    ctx.db,
    owned.map((a) => a.id),
  )) {
    if (view.app.ownerId !== app.ownerId) continue;
    for (const target of view.attachments) {
      if (ownerIds.has(target.app.id) || !theirs.has(target.app.id)) continue;
      await removeAttachment(ctx, view, target);
      count++;
    }
  }
  return count;
}

/** The URL the add-on's attachments carry now (from its billing app's config). */
export async function currentUrl(db: Database, view: AddonView): Promise<string> {
  for (const a of view.attachments) {
    const config = await getConfigVars(db, a.app.id);
    for (const v of a.configVars) if (config[v]) return config[v]!;
  }
  throw invalidParams(`${view.addon.name} has no attachment to copy its credentials from.`);
}

/**
 * `heroku pg:credentials:rotate`: a new password for the add-on's role, its open sessions
 * ended (the old URL stops working at once), and every attachment's config vars updated,
 * each app with a release "Update <NAME> by heroku-postgresql" and restarted dynos.
 */
export async function rotateCredentials(ctx: ServiceContext, view: AddonView): Promise<DatabaseCredentials> {
  const actor = actingUser(ctx);
  const resource = provisioned(view);
  const creds = await serverCall(() => providerFor(ctx.env).rotate(resource));
  const url = databaseUrl(creds);
  const byApp = new Map<string, { app: AppRow; vars: string[]; names: string[] }>();
  for (const a of view.attachments) {
    const entry = byApp.get(a.app.id) ?? { app: a.app, vars: [], names: [] };
    entry.vars.push(...a.configVars);
    entry.names.push(a.attachment.name);
    byApp.set(a.app.id, entry);
  }
  await ctx.db.transaction(async (tx) => {
    for (const { app, vars, names } of byApp.values()) {
      await changeConfigIn(tx, { actor, requestId: ctx.requestId }, app, Object.fromEntries(vars.map((v) => [v, url])), {
        description: `Update ${names.join(", ")} by ${POSTGRES.name}`,
      });
    }
    await emit(tx, ctx, { type: "addon.credentials_rotated", app: view.app, data: { name: view.addon.name } });
  });
  return creds;
}

/** `pg:killall`: ends every session of the database's role; returns how many ended. */
export async function endDatabaseSessions(ctx: ServiceContext, view: AddonView): Promise<number> {
  actingUser(ctx);
  const resource = provisioned(view);
  const creds = await addonCredentials(ctx.db, view, ctx.env);
  const ended = await serverCall(() => providerFor(ctx.env).endSessions(resource, creds));
  await ctx.db.transaction((tx) => emit(tx, ctx, { type: "addon.sessions_ended", app: view.app, data: { name: view.addon.name, sessions: ended } }));
  return ended;
}

/** An extension's name as `CREATE EXTENSION` takes it. */
export const EXTENSION_RE = /^[a-z0-9_][a-z0-9_-]{0,62}$/;

/**
 * `pg:reset`: the database emptied, with its credentials (the apps' URLs stay as they are)
 * and, when asked, extensions made afresh. Extensions are checked before anything changes.
 */
export async function resetDatabase(ctx: ServiceContext, view: AddonView, extensions: string[] = []): Promise<void> {
  actingUser(ctx);
  const resource = provisioned(view);
  const wanted = [...new Set(extensions.map((e) => e.trim().toLowerCase()))].filter(Boolean);
  const bad = wanted.filter((e) => !EXTENSION_RE.test(e));
  if (bad.length > 0) throw invalidParams(`Not an extension's name: ${bad.join(", ")}.`);
  if (wanted.length > 20) throw invalidParams("At most 20 extensions can be made with a reset.");
  const creds = await addonCredentials(ctx.db, view, ctx.env);
  await serverCall(() => providerFor(ctx.env).reset(resource, planOf(view.addon), creds, wanted));
  await ctx.db.transaction((tx) => emit(tx, ctx, { type: "addon.reset", app: view.app, data: { name: view.addon.name, extensions: wanted } }));
}

/** `PATCH /apps/{app}/addons/{addon}`: another plan of the same service. */
export async function changePlan(ctx: ServiceContext, app: AppRow, idOrName: string, planInput: string): Promise<AddonView> {
  const actor = actingUser(ctx);
  requireOwner(app, actor);
  const view = await findAddon(ctx.db, actor, idOrName, app);
  if (view.addon.appId !== app.id) throw new ApiError("forbidden", `${view.addon.name} belongs to the app ${view.app.name}.`);
  const { service, plan } = resolvePlan(planInput.includes(":") || isUuid(planInput) ? planInput : `${view.addon.service}:${planInput}`);
  if (service.name !== view.addon.service)
    throw invalidParams(`${view.addon.name} is a ${view.addon.service} add-on; it cannot change to a plan of ${service.name}.`);
  if (view.addon.providerId && view.addon.state === "provisioned") await serverCall(() => providerFor(ctx.env).changePlan(view.addon.providerId!, plan));
  const addon = await ctx.db.transaction(async (tx) => {
    const [addon] = await tx.update(addons).set({ plan: plan.name, updatedAt: new Date() }).where(eq(addons.id, view.addon.id)).returning();
    await emit(tx, ctx, { type: "addon.plan_changed", app, data: { name: view.addon.name, plan: plan.name } });
    return addon!;
  });
  return { ...view, addon };
}

/**
 * The credentials of an add-on: the provider's own address, role and database, with the
 * password its attachments' config var carries (an app's config is the app's to change: a
 * host, port or name set there is never where the platform connects).
 */
export async function addonCredentials(db: Database, view: AddonView, env: ProviderEnv): Promise<DatabaseCredentials> {
  const url = new URL(await currentUrl(db, view));
  return providerFor(env).connection(provisioned(view), decodeURIComponent(url.password));
}
