import type { AppRow } from "../db/schema/apps.ts";
import type { LogDrainRow } from "../db/schema/log-drains.ts";
import { isoTime } from "./common.ts";

/** Heroku's log-drain shape; drains here are never made by add-ons. */
export function toLogDrainJson(d: LogDrainRow, app: Pick<AppRow, "id" | "name">) {
  return {
    id: d.id,
    addon: null,
    app: { id: app.id, name: app.name },
    token: d.token,
    url: d.url,
    created_at: isoTime(d.createdAt),
    updated_at: isoTime(d.updatedAt),
  };
}
