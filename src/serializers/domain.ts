import type { DomainRow } from "../db/schema/index.ts";
import type { AppRow } from "../db/schema/apps.ts";
import { isoTime } from "./common.ts";

/** Heroku's domain shape for a custom domain: the DNS target is the edge's, or the app's own name. */
export function toDomainJson(app: Pick<AppRow, "id" | "name">, d: DomainRow, appsDomain: string) {
  return {
    id: d.id,
    app: { id: app.id, name: app.name },
    hostname: d.hostname,
    kind: "custom",
    cname: d.dnsTarget ?? `${app.name}.${appsDomain}`,
    status: d.status,
    acm_status: d.acmStatus,
    acm_status_reason: d.acmStatusReason,
    sni_endpoint: null,
    created_at: isoTime(d.createdAt),
    updated_at: isoTime(d.updatedAt),
  };
}

/** The name every app has under the apps domain (Heroku's `kind: heroku` domain). */
export function toDefaultDomainJson(app: Pick<AppRow, "id" | "name" | "createdAt" | "updatedAt">, appsDomain: string) {
  return {
    id: app.id,
    app: { id: app.id, name: app.name },
    hostname: `${app.name}.${appsDomain}`,
    kind: "heroku",
    cname: null,
    status: "none",
    acm_status: null,
    acm_status_reason: null,
    sni_endpoint: null,
    created_at: isoTime(app.createdAt),
    updated_at: isoTime(app.updatedAt),
  };
}
