import type { AppRow } from "../db/schema/apps.ts";
import { gitUrl, webUrl, type PublicUrls } from "../lib/urls.ts";
import type { Member } from "../services/access/collaborators.ts";
import { isoTime, isoTimeOrNull, REGION_IDS, STACK_IDS } from "./common.ts";

/** Heroku's app shape, with every field the CLI reads (`repo_size`/`slug_size` always present). */
export function toAppJson(app: AppRow, owner: { id: string; email: string }, urls: PublicUrls, acm = false) {
  return {
    id: app.id,
    name: app.name,
    owner: { id: owner.id, email: owner.email },
    region: { id: REGION_IDS[app.region]!, name: app.region },
    stack: { id: STACK_IDS[app.stack]!, name: app.stack },
    build_stack: { id: STACK_IDS[app.buildStack]!, name: app.buildStack },
    generation: { id: "7ca0fb8b-3d4b-4d58-9a39-1a3b7bbd2a1c", name: "cedar" },
    web_url: webUrl(urls, app.name),
    git_url: gitUrl(urls, app.name),
    // Certificates for custom domains issued by the edge (Heroku's Automated Certificate Management).
    acm,
    archived_at: null,
    buildpack_provided_description: null,
    create_status: "complete",
    internal_routing: null,
    locked: false,
    maintenance: app.maintenance,
    organization: null,
    team: null,
    space: null,
    process_tier: app.processTier,
    repo_size: app.repoSize,
    slug_size: app.slugSize,
    released_at: isoTimeOrNull(app.releasedAt),
    created_at: isoTime(app.createdAt),
    updated_at: isoTime(app.updatedAt),
  };
}

/** Heroku's collaborator shape: the owner (role `owner`) or a collaborator of a personal app. */
export function toCollaboratorJson(app: { id: string; name: string }, m: Member) {
  return {
    id: m.id,
    app: { id: app.id, name: app.name },
    // Personal apps have no per-permission access control on Heroku either: the list is empty.
    permissions: [],
    role: m.role,
    user: { id: m.user.id, email: m.user.email, federated: false },
    created_at: isoTime(m.createdAt),
    updated_at: isoTime(m.updatedAt),
  };
}
