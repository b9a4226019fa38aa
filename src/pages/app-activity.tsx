import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow, ReleaseRow } from "../db/schema/index.ts";
import { parseRange } from "../lib/range.ts";
import { currentVersion, listReleases, RELEASE_SORT_FIELDS, rollback } from "../services/apps/releases.ts";
import { appHref, field, type DashboardEnv } from "./request.ts";
import { appForm, appOrLogin, ReleasesTable } from "./app-support.tsx";
import { AppFrame, PostForm, frameOf, type Frame } from "./layout.tsx";

/** Releases shown on the activity page; older ones are in `heroku releases`. */
const SHOWN = 50;

const ActivityView: FC<{ frame: Frame; app: AppRow; releases: ReleaseRow[]; current: number | null; more: boolean }> = ({
  frame,
  app,
  releases,
  current,
  more,
}) => (
  <AppFrame frame={frame} app={app.name} tab="activity">
    <h2>Activity</h2>
    <p class="hint">Rolling back cuts a new release with an earlier release's code and config vars.</p>
    <ReleasesTable
      releases={releases}
      current={current}
      actions={(r) =>
        r.version !== current && r.status === "succeeded" ? (
          <PostForm action={appHref(app.name, "rollback")} csrf={frame.csrf} label={`Roll back to v${r.version}`}>
            <input type="hidden" name="version" value={String(r.version)} />
            <button type="submit" class="secondary">
              Roll back to v{r.version}
            </button>
          </PostForm>
        ) : null
      }
    />
    {more ? <p class="hint">Showing the latest {SHOWN} releases; run heroku releases for older ones.</p> : null}
  </AppFrame>
);

/** An app's release history, with rollback to any earlier successful release. */
export const activityPages = new Hono<DashboardEnv>()
  .get("/apps/:name/activity", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app } = found;
    const page = await listReleases(c.var.db, app, { ...parseRange(undefined, RELEASE_SORT_FIELDS), order: "desc", max: SHOWN });
    return c.html(
      <ActivityView
        frame={frameOf(c, `${app.name} · Activity`)}
        app={app}
        releases={page.items}
        current={await currentVersion(c.var.db, app.id)}
        more={!!page.nextRange}
      />,
    );
  })
  .post(
    "/apps/:name/rollback",
    appForm(
      (app) => appHref(app.name, "activity"),
      async ({ c, app, ctx }) => {
        const release = await rollback(ctx, app, await field(c, "version"));
        return `${release.description}: released v${release.version}.`;
      },
    ),
  );
