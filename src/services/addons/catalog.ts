import { ApiError } from "../../errors.ts";

/** An add-on service and what the platform knows of it. */
export interface AddonService {
  id: string;
  name: string;
  humanName: string;
  cliPluginName: string | null;
  /** The attachment name of its first attachment (`DATABASE` → `DATABASE_URL`). */
  defaultAttachment: string;
  createdAt: string;
}

/** A plan of a service, with the limits it states and the provider enforces. */
export interface AddonPlan {
  id: string;
  /** `service:plan`. */
  name: string;
  humanName: string;
  description: string;
  serviceId: string;
  default: boolean;
  priceCents: number;
  /** Connections the database's role may hold at once. */
  connectionLimit: number;
  /** Storage the database may use, in MB (beyond it, writes are refused until it shrinks). */
  storageMb: number;
  /** Temporary files one session may hold, in MB (large sorts and hashes; beyond it the query fails). */
  tempFileMb: number;
  /** Backups kept (PGBackups): by hand (`b001`), and daily scheduled ones (`a001`); a new one past these expires the oldest. */
  backups: { manual: number; scheduled: number };
  /** Older names the CLI and the seed still use for this plan. */
  aliases: string[];
}

/** When the catalog was written (its resources' created_at and updated_at). */
const CATALOG_DATE = "2026-11-01T00:00:00Z";

export const POSTGRES: AddonService = {
  id: "6c67493d-8fc2-4cd4-9161-4f1ec11cbe69",
  name: "heroku-postgresql",
  humanName: "Heroku Postgres",
  cliPluginName: null,
  defaultAttachment: "DATABASE",
  createdAt: CATALOG_DATE,
};

const postgresPlan = (id: string, plan: string, humanName: string, connectionLimit: number, storageMb: number, extra: Partial<AddonPlan> = {}): AddonPlan => ({
  id,
  name: `${POSTGRES.name}:${plan}`,
  humanName,
  description: `Heroku Postgres ${humanName}: ${storageMb >= 1024 ? `${storageMb / 1024} GB` : `${storageMb} MB`} of storage, ${connectionLimit} connections`,
  serviceId: POSTGRES.id,
  default: false,
  priceCents: 0,
  connectionLimit,
  storageMb,
  tempFileMb: Math.min(storageMb, 4096),
  // Heroku's Essential tier: five manual backups, a week of daily ones.
  backups: { manual: 5, scheduled: 7 },
  aliases: [],
  ...extra,
});

/** The plans, the free tier first (and default); `hobby-dev` and `mini` are its older names. */
export const PLANS: AddonPlan[] = [
  postgresPlan("4b1c9b6e-2f27-4a8c-8c0e-1f0c5b7a0e01", "essential-0", "Essential 0", 20, 1024, { default: true, aliases: ["hobby-dev", "mini"] }),
  postgresPlan("4b1c9b6e-2f27-4a8c-8c0e-1f0c5b7a0e02", "essential-1", "Essential 1", 20, 10 * 1024),
  postgresPlan("4b1c9b6e-2f27-4a8c-8c0e-1f0c5b7a0e03", "essential-2", "Essential 2", 40, 32 * 1024),
];

export const SERVICES: AddonService[] = [POSTGRES];

const isUuid = (s: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);

/** A service by id or name. */
export function findService(idOrName: string): AddonService {
  const service = SERVICES.find((s) => s.id === idOrName || s.name === idOrName);
  if (!service) throw new ApiError("not_found", `Couldn't find either the add-on service or the add-on plan: ${idOrName}.`, "addon_service");
  return service;
}

/** A plan by id, or by name within a service (`essential-0`, or an alias). */
export function findPlan(service: AddonService, idOrName: string): AddonPlan {
  const short = idOrName.startsWith(`${service.name}:`) ? idOrName.slice(service.name.length + 1) : idOrName;
  const plan = PLANS.find((p) => p.serviceId === service.id && (p.id === idOrName || p.name === `${service.name}:${short}` || p.aliases.includes(short)));
  if (!plan) throw new ApiError("not_found", `Couldn't find the plan ${idOrName} of ${service.name}.`, "plan");
  return plan;
}

/** A plan by id alone (`GET /plans/{id}`). */
export function planById(id: string): AddonPlan {
  const plan = isUuid(id) ? PLANS.find((p) => p.id === id) : undefined;
  if (!plan) throw new ApiError("not_found", "Couldn't find that plan.", "plan");
  return plan;
}

/**
 * What `heroku addons:create` sends as the plan: `service:plan`, `service` (the default
 * plan), or a plan id. An unknown service or plan is refused, as a plan without a service.
 */
export function resolvePlan(input: string): { service: AddonService; plan: AddonPlan } {
  const byId = isUuid(input) ? PLANS.find((p) => p.id === input) : undefined;
  if (byId) return { service: findService(byId.serviceId), plan: byId };
  const [serviceName, planName] = input.split(":", 2) as [string, string | undefined];
  const service = SERVICES.find((s) => s.name === serviceName);
  if (!service) {
    throw new ApiError(
      "not_found",
      `Couldn't find either the add-on service or the add-on plan of "${input}": add-ons are named service:plan, e.g. heroku-postgresql:essential-0.`,
      "addon_service",
    );
  }
  if (!planName) return { service, plan: PLANS.find((p) => p.serviceId === service.id && p.default)! };
  return { service, plan: findPlan(service, planName) };
}

export const catalogDate = CATALOG_DATE;
