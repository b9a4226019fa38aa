import { index, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/** Heroku's add-on states; `failed` is dynoplane's for a provisioning that did not complete. */
export type AddonState = "provisioning" | "provisioned" | "deprovisioning" | "deprovisioned" | "failed";

/**
 * An add-on: one resource of a service (a Postgres database) on a plan, billed to the app
 * that created it and attached to it and possibly others. Its credentials are not stored
 * here: they live in the config vars of the apps it is attached to, as on Heroku.
 */
export const addons = pgTable(
  "addons",
  {
    id: idColumn(),
    /** The app that owns it (Heroku's billing app). */
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    /** Globally unique, `postgresql-<adjective>-<number>` unless named. */
    name: text("name").notNull(),
    service: text("service").notNull(),
    /** `service:plan`, e.g. `heroku-postgresql:essential-0`. */
    plan: text("plan").notNull(),
    state: text("state").$type<AddonState>().notNull().default("provisioning"),
    /** The provider's name for the resource (the role and database), once provisioned. */
    providerId: text("provider_id"),
    /** The `HEROKU_POSTGRESQL_<COLOR>` name of its default config var. */
    color: text("color").notNull(),
    /** Why provisioning failed, shown by `addons:info` and the dashboard. */
    error: text("error"),
    /** The add-on it was forked from (`--fork`), by name, as `pg:info` shows it. */
    forkedFrom: text("forked_from"),
    ...timestamps,
  },
  (t) => [uniqueIndex("addons_name_key").on(t.name), index("addons_app_idx").on(t.appId)],
);

export type AddonRow = typeof addons.$inferSelect;

/** An add-on attached to an app under a name (`DATABASE`): its `<NAME>_URL` config var is set there. */
export const addonAttachments = pgTable(
  "addon_attachments",
  {
    id: idColumn(),
    addonId: uuid("addon_id")
      .notNull()
      .references(() => addons.id, { onDelete: "cascade" }),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    ...timestamps,
  },
  (t) => [uniqueIndex("addon_attachments_app_name_key").on(t.appId, t.name), index("addon_attachments_addon_idx").on(t.addonId)],
);

export type AddonAttachmentRow = typeof addonAttachments.$inferSelect;
