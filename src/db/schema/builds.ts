import { index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { accounts } from "./accounts.ts";
import { apps } from "./apps.ts";
import { idColumn, timestamps } from "./columns.ts";
import { gitPacks } from "./git-packs.ts";
import { hosts } from "./hosts.ts";
import { sources } from "./sources.ts";

export type BuildStatus = "pending" | "succeeded" | "failed";
export type BuildSourceKind = "git" | "tarball";

/** A buildpack as a build runs it: a built-in name, a git URL or a path on the host. */
export interface BuildpackRef {
  url: string;
  name?: string;
}

/**
 * One run of the buildpacks over a source (a git push or an uploaded tarball) on a host
 * agent. Its output is kept (capped) once it ends; on success it names the slug and the
 * release it made. Slug and release are plain ids: both outlive nothing the build owns.
 */
export const builds = pgTable(
  "builds",
  {
    id: idColumn(),
    appId: uuid("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    status: text("status").$type<BuildStatus>().notNull().default("pending"),
    sourceKind: text("source_kind").$type<BuildSourceKind>().notNull(),
    /** The commit of a git build. */
    commit: text("commit"),
    /** Where the source is in R2: the pushed pack, or the uploaded tarball. */
    sourceBlobKey: text("source_blob_key").notNull(),
    /** The URL shown as `source_blob.url`. */
    sourceUrl: text("source_url").notNull(),
    sourceVersion: text("source_version"),
    sourceChecksum: text("source_checksum"),
    packId: uuid("pack_id").references(() => gitPacks.id, { onDelete: "set null" }),
    sourceId: uuid("source_id").references(() => sources.id, { onDelete: "set null" }),
    /** Empty: the agent detects among the built-in buildpacks. */
    buildpacks: jsonb("buildpacks").$type<BuildpackRef[]>().notNull().default([]),
    stack: text("stack").notNull(),
    hostId: uuid("host_id").references(() => hosts.id, { onDelete: "set null" }),
    slugId: uuid("slug_id"),
    /** Git builds: `pack-<sha>`, the commit's objects stored for `git clone` (R2 `git/<app>/clone/<build>/<name>.pack` and `.idx`). */
    repositoryPack: text("repository_pack"),
    releaseId: uuid("release_id"),
    error: text("error"),
    /** The output lines, capped; written when the build ends (live output is in its BuildChannel). */
    output: text("output").array(),
    createdBy: uuid("created_by").references(() => accounts.id, { onDelete: "set null" }),
    userEmail: text("user_email").notNull(),
    finishedAt: timestamp("finished_at", { withTimezone: true, mode: "date" }),
    ...timestamps,
  },
  (t) => [index("builds_app_idx").on(t.appId, t.createdAt)],
);

export type BuildRow = typeof builds.$inferSelect;
