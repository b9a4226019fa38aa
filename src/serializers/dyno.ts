import type { AppRow } from "../db/schema/apps.ts";
import type { DynoRow } from "../db/schema/dynos.ts";
import { isoTime } from "./common.ts";

/** Heroku's dyno shape; a sleeping eco dyno reads as `idle`, a stopped one as `down`. */
export function toDynoJson(d: DynoRow & { releaseVersion: number; attachUrl?: string | null }, app: Pick<AppRow, "id" | "name">) {
  const state = d.desired === "sleeping" ? "idle" : d.desired === "stopped" ? "down" : d.state;
  return {
    id: d.id,
    app: { id: app.id, name: app.name },
    attach_url: d.attachUrl ?? null,
    command: d.command,
    created_at: isoTime(d.createdAt),
    name: d.name,
    release: { id: d.releaseId, version: d.releaseVersion },
    size: d.size,
    state,
    type: d.type,
    updated_at: isoTime(d.stateChangedAt),
  };
}
