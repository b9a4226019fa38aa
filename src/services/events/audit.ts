import type { Database } from "../../db/client.ts";
import { auditEvents } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";

export interface AuditEntry {
  actor: Pick<Actor, "accountId" | "email"> | null;
  action: string;
  app?: { id: string; name: string };
  details?: Record<string, unknown>;
  requestId?: string | null;
}

/** Records who did what; called inside the transaction of the change it describes. */
export async function recordAudit(db: Database, entry: AuditEntry): Promise<void> {
  await db.insert(auditEvents).values({
    accountId: entry.actor?.accountId ?? null,
    actorEmail: entry.actor?.email ?? null,
    action: entry.action,
    appId: entry.app?.id ?? null,
    appName: entry.app?.name ?? null,
    details: entry.details ?? {},
    requestId: entry.requestId ?? null,
  });
}
