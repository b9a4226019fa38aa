import { DEFAULT_STACK, type REGIONS, type STACKS } from "../services/apps/apps.ts";
import { REGION_IDS, STACK_IDS } from "./common.ts";

/**
 * The regions apps can be made in and the stacks they build and run on, in Heroku's shapes.
 * A region is where the operator runs its hosts, not a cloud provider's: `provider` names
 * dynoplane and its own region name (Heroku's schema lists only AWS's region names there).
 */

/** When the platform's fixed regions and stacks came to be, as their `created_at`. */
const SINCE = "2024-01-01T00:00:00Z";

const REGION_INFO: Record<(typeof REGIONS)[number], { description: string; country: string; locale: string }> = {
  us: { description: "United States", country: "United States", locale: "United States" },
  eu: { description: "Europe", country: "Europe", locale: "Europe" },
};

export function toRegionJson(name: (typeof REGIONS)[number]) {
  return {
    id: REGION_IDS[name]!,
    name,
    ...REGION_INFO[name],
    private_capable: false,
    provider: { name: "dynoplane", region: name },
    created_at: SINCE,
    updated_at: SINCE,
  };
}

export function toStackJson(name: (typeof STACKS)[number]) {
  return { id: STACK_IDS[name]!, name, state: "public", default: name === DEFAULT_STACK, created_at: SINCE, updated_at: SINCE };
}
