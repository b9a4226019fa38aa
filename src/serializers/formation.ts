import type { AppRow } from "../db/schema/apps.ts";
import type { FormationRow } from "../db/schema/formations.ts";
import { DYNO_SIZE_IDS, isoTime } from "./common.ts";

/** Heroku's formation shape; `quantity` is a number in responses. */
export function toFormationJson(f: FormationRow, app: Pick<AppRow, "id" | "name">) {
  return {
    id: f.id,
    app: { id: app.id, name: app.name },
    type: f.type,
    command: f.command,
    quantity: f.quantity,
    size: f.size,
    dyno_size: { id: DYNO_SIZE_IDS[f.size] ?? null, name: f.size },
    created_at: isoTime(f.createdAt),
    updated_at: isoTime(f.updatedAt),
  };
}
