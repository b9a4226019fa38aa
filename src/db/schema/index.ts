export { accounts, type AccountRow } from "./accounts.ts";
export { oauthAuthorizations, type OAuthAuthorizationRow } from "./oauth-authorizations.ts";
export { apps, type AppRow } from "./apps.ts";
export { configVars } from "./config-vars.ts";
export { releases, type ReleaseRow, type ReleaseStatus } from "./releases.ts";
export { auditEvents } from "./audit-events.ts";
