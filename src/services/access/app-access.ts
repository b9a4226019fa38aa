import { and, eq, exists, or } from "drizzle-orm";
import type { Database } from "../../db/client.ts";
import { apps, collaborators } from "../../db/schema/index.ts";
import type { Actor } from "../../env.ts";

/** The condition on `apps` that holds for the apps an actor may reach: owned or collaborated on. */
export function reachableBy(db: Database, actor: Pick<Actor, "accountId">) {
  const member = exists(
    db
      .select({ id: collaborators.id })
      .from(collaborators)
      .where(and(eq(collaborators.appId, apps.id), eq(collaborators.accountId, actor.accountId))),
  );
  return or(eq(apps.ownerId, actor.accountId), member);
}

/** Whether an account owns or collaborates on an app (by id). */
export async function accountReachesApp(db: Database, accountId: string, appId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: apps.id })
    .from(apps)
    .where(and(eq(apps.id, appId), reachableBy(db, { accountId })))
    .limit(1);
  return !!row;
}
