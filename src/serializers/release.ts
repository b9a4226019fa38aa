import type { AppRow } from "../db/schema/apps.ts";
import type { ReleaseRow } from "../db/schema/releases.ts";
import { isoTime } from "./common.ts";

/** Heroku's release shape; `current` is true for the newest successful release only. */
export function toReleaseJson(r: ReleaseRow, app: Pick<AppRow, "id" | "name">, currentVersion: number | null) {
  return {
    id: r.id,
    version: r.version,
    description: r.description,
    status: r.status,
    current: r.version === currentVersion,
    // Only a successful release with a slug can be rolled back to (rollback refuses the others).
    eligible_for_rollback: r.status === "succeeded" && r.slugId !== null,
    addon_plan_names: r.addonPlanNames,
    artifacts: r.slugId ? [{ type: "slug", id: r.slugId }] : [],
    app: { id: app.id, name: app.name },
    slug: r.slugId ? { id: r.slugId } : null,
    user: { id: r.accountId ?? "00000000-0000-0000-0000-000000000000", email: r.userEmail },
    output_stream_url: null,
    created_at: isoTime(r.createdAt),
    updated_at: isoTime(r.updatedAt),
  };
}
