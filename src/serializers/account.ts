import type { AccountRow } from "../db/schema/accounts.ts";
import { isoTime, isoTimeOrNull } from "./common.ts";

/** Heroku's account shape. */
export function toAccountJson(a: AccountRow) {
  return {
    id: a.id,
    email: a.email,
    name: a.name,
    allow_tracking: false,
    beta: false,
    federated: false,
    identity_provider: null,
    last_login: isoTimeOrNull(a.lastLoginAt),
    sms_number: null,
    suspended_at: null,
    delinquent_at: null,
    two_factor_authentication: false,
    verified: a.verified,
    country_of_residence: null,
    default_organization: null,
    default_team: null,
    created_at: isoTime(a.createdAt),
    updated_at: isoTime(a.updatedAt),
  };
}
