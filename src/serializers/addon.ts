import type { AddonAttachmentRow, AddonRow, AppRow } from "../db/schema/index.ts";
import { type AddonPlan, type AddonService, catalogDate, findService, PLANS } from "../services/addons/catalog.ts";
import { isoTime } from "./common.ts";

type AppRef = Pick<AppRow, "id" | "name">;

/** Heroku's add-on service shape. */
export function toAddonServiceJson(s: AddonService) {
  return {
    cli_plugin_name: s.cliPluginName,
    created_at: s.createdAt,
    human_name: s.humanName,
    id: s.id,
    name: s.name,
    state: "ga",
    supports_multiple_installations: true,
    supports_sharing: true,
    updated_at: catalogDate,
    supported_generations: [{ id: "c6b2bb0a-9e4b-4b8e-8a3a-8d1d1c0f0c01", name: "cedar" }],
  };
}

const price = (p: AddonPlan) => ({ cents: p.priceCents, contract: false, unit: "month" });

/** Heroku's plan shape, with the limits dynoplane states and enforces. */
export function toPlanJson(p: AddonPlan) {
  const service = findService(p.serviceId);
  return {
    addon_service: { id: service.id, name: service.name },
    created_at: catalogDate,
    compliance: null,
    default: p.default,
    description: p.description,
    human_name: p.humanName,
    id: p.id,
    installable_inside_private_network: false,
    installable_outside_private_network: true,
    name: p.name,
    price: price(p),
    space_default: false,
    state: "public",
    updated_at: catalogDate,
    visible: true,
    connection_limit: p.connectionLimit,
    storage_limit_mb: p.storageMb,
  };
}

/** The API's state of an add-on: one whose provisioning failed reads as Heroku's `deprovisioned`. */
export const apiState = (a: AddonRow) => (a.state === "failed" ? "deprovisioned" : a.state);

/**
 * Heroku's add-on shape, with `plan` and `addon_service` expanded (the CLI asks for both
 * with `Accept-Expansion` and reads `plan.price`), and the config vars it sets on its app.
 */
export function toAddonJson(a: AddonRow, app: AppRef, configVars: string[]) {
  const plan = PLANS.find((p) => p.name === a.plan)!;
  const service = findService(plan.serviceId);
  return {
    actions: [],
    addon_service: { id: service.id, name: service.name, human_name: service.humanName },
    billing_entity: { id: app.id, name: app.name, type: "app" },
    app: { id: app.id, name: app.name },
    billed_price: price(plan),
    config_vars: configVars,
    created_at: isoTime(a.createdAt),
    id: a.id,
    name: a.name,
    plan: { id: plan.id, name: plan.name, human_name: plan.humanName, price: price(plan) },
    provider_id: a.providerId ?? a.id,
    provision_message: provisionMessage(a),
    state: apiState(a),
    updated_at: isoTime(a.updatedAt),
    web_url: null,
  };
}

/** What `addons:create` and `addons:info` say of the add-on's state. */
function provisionMessage(a: AddonRow): string {
  if (a.state === "failed") return `Provisioning failed: ${a.error ?? "unknown error"}`;
  if (a.state === "provisioning") return "The database is being created; the app restarts with its config vars once it is available.";
  return "The database has been created and is available.";
}

/** Heroku's add-on attachment shape. */
export function toAttachmentJson(t: AddonAttachmentRow, addon: AddonRow, addonApp: AppRef, app: AppRef) {
  return {
    addon: { id: addon.id, name: addon.name, app: { id: addonApp.id, name: addonApp.name } },
    app: { id: app.id, name: app.name },
    created_at: isoTime(t.createdAt),
    id: t.id,
    name: t.name,
    namespace: null,
    updated_at: isoTime(t.updatedAt),
    web_url: null,
    log_input_url: null,
  };
}
