export { accounts, type AccountRow } from "./accounts.ts";
export { oauthAuthorizations, type OAuthAuthorizationRow } from "./oauth-authorizations.ts";
export { apps, type AppRow } from "./apps.ts";
export { configVars } from "./config-vars.ts";
export { releases, type ReleaseRow, type ReleaseStatus } from "./releases.ts";
export { auditEvents } from "./audit-events.ts";
export { hosts, type HostRow, type HostState } from "./hosts.ts";
export { slugs, type SlugRow } from "./slugs.ts";
export { formations, type FormationRow } from "./formations.ts";
export { dynos, type DynoRow, type DynoDesired, type DynoState } from "./dynos.ts";
export { loginAttempts, type LoginAttemptRow, type LoginAttemptStatus } from "./login-attempts.ts";
export { browserSessions, type BrowserSessionRow } from "./browser-sessions.ts";
export { signInThrottles } from "./sign-in-throttles.ts";
export { logDrains, type LogDrainRow } from "./log-drains.ts";
export { sources, type SourceRow } from "./sources.ts";
export { gitPacks, type GitPackRow } from "./git-packs.ts";
export { builds, type BuildRow, type BuildStatus, type BuildSourceKind, type BuildpackRef } from "./builds.ts";
export { addons, addonAttachments, type AddonRow, type AddonAttachmentRow, type AddonState } from "./addons.ts";
export { dynoUsage, appFeatures, keepAlive, appTraffic, type DynoUsageRow, type KeepAliveRow } from "./eco.ts";
export { collaborators, type CollaboratorRow } from "./collaborators.ts";
export { domains, type DomainRow, type DomainStatus } from "./domains.ts";
export {
  appWebhooks,
  webhookEvents,
  webhookDeliveries,
  WEBHOOK_ENTITIES,
  type WebhookEntity,
  type AppWebhookRow,
  type WebhookEventRow,
  type WebhookDeliveryRow,
  type DeliveryStatus,
} from "./webhooks.ts";
export { accountLimits, type AccountLimitsRow } from "./account-limits.ts";
export { domainEvents, type DomainEventRow } from "./domain-events.ts";
export { pgTransfers, pgBackupSchedules, type PgTransferRow, type PgBackupScheduleRow, type TransferKind, type TransferLog } from "./pg-transfers.ts";
