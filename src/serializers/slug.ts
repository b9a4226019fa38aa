import type { SlugRow } from "../db/schema/slugs.ts";
import { isoTime, STACK_IDS } from "./common.ts";

/** Heroku's slug shape; `blob` carries a signed upload URL only when one was just issued. */
export function toSlugJson(s: SlugRow, blob: { method: string; url: string } | null) {
  return {
    id: s.id,
    blob: blob ?? { method: "get", url: null },
    buildpack_provided_description: s.buildpackProvidedDescription,
    checksum: s.checksum,
    commit: s.commit,
    commit_description: s.commitDescription,
    process_types: s.processTypes,
    size: s.size,
    stack: { id: STACK_IDS[s.stack] ?? STACK_IDS["heroku-24"]!, name: s.stack },
    deleted_at: null,
    created_at: isoTime(s.createdAt),
    updated_at: isoTime(s.updatedAt),
  };
}
