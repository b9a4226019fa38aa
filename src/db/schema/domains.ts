import { index, pgTable, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";

/** Where a custom domain stands with the edge that serves it (Heroku's domain `status`). */
export type DomainStatus = "pending" | "succeeded" | "failed";

/**
 * Custom domains of apps (`heroku domains:add www.example.com`): the router answers a
 * request for the hostname with the app. A hostname belongs to one app on the platform.
 */
export const domains = pgTable(
  "domains",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    /** Lower case, without a trailing dot; `*.example.com` for a wildcard. */
    hostname: text("hostname").notNull(),
    status: text("status").$type<DomainStatus>().notNull(),
    /** The DNS target the owner points a CNAME (or ALIAS) at; null: the app's own name under the apps domain. */
    dnsTarget: text("dns_target"),
    /** The edge's certificate for it: Heroku's `acm_status` words (`pending`, `ok`, `failed`), null when none is managed. */
    acmStatus: text("acm_status"),
    acmStatusReason: text("acm_status_reason"),
    /** The provider's id for it (a Cloudflare custom hostname's id), to refresh and remove it. */
    providerId: text("provider_id"),
    ...timestamps,
  },
  (t) => [uniqueIndex("domains_hostname_key").on(t.hostname), index("domains_app_idx").on(t.appId)],
);

export type DomainRow = typeof domains.$inferSelect;
