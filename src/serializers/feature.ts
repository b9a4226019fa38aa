import type { AppFeature } from "../services/apps/features.ts";
import { isoTime } from "./common.ts";

/** Heroku's app-feature shape; `heroku features` lists the general ones, `heroku labs` the others. */
export function toAppFeatureJson(f: AppFeature) {
  return {
    id: f.id,
    name: f.name,
    display_name: f.displayName,
    description: f.description,
    doc_url: f.docUrl,
    enabled: f.enabled,
    state: f.state,
    // Heroku names a feedback address per feature; dynoplane has none to give.
    feedback_email: "",
    created_at: isoTime(f.createdAt),
    updated_at: isoTime(f.updatedAt),
  };
}
