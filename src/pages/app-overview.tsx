import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow, FormationRow, ReleaseRow } from "../db/schema/index.ts";
import { parseRange } from "../lib/range.ts";
import { gitUrl, publicUrls, webUrl } from "../lib/urls.ts";
import { toDynoJson } from "../serializers/dyno.ts";
import { listDynos } from "../services/dynos/dynos.ts";
import { listFormation } from "../services/dynos/formation.ts";
import { currentVersion, listReleases, RELEASE_SORT_FIELDS } from "../services/apps/releases.ts";
import { hasDeployed } from "../services/apps/slugs.ts";
import { appHref, type DashboardEnv } from "./request.ts";
import { appOrLogin, ReleasesTable, StateBadge } from "./app-support.tsx";
import { AppFrame, Fact, Time, frameOf, type Frame } from "./layout.tsx";

interface OverviewProps {
  frame: Frame;
  app: AppRow;
  web: string;
  git: string;
  deployed: boolean;
  formation: FormationRow[];
  dynoStates: Array<{ name: string; state: string }>;
  releases: ReleaseRow[];
  current: number | null;
}

/** "3 dynos: 2 up, 1 starting", or why there are none. */
function dynoSummary(deployed: boolean, states: Array<{ state: string }>): string {
  if (!deployed) return "Not deployed yet: push code with git push heroku main.";
  if (!states.length) return "No dynos are running (every process type is scaled to 0).";
  const counts = new Map<string, number>();
  for (const d of states) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
  const parts = [...counts].map(([state, n]) => `${n} ${state}`);
  return `${states.length} ${states.length === 1 ? "dyno" : "dynos"}: ${parts.join(", ")}`;
}

const OverviewView: FC<OverviewProps> = (p) => (
  <AppFrame frame={p.frame} app={p.app.name} tab="overview">
    <h2>Overview</h2>
    <dl>
      <Fact term="Web URL">
        <a href={p.web} rel="noopener">
          {p.web}
        </a>
      </Fact>
      <Fact term="Git URL">
        <code>{p.git}</code>
      </Fact>
      <Fact term="State">{dynoSummary(p.deployed, p.dynoStates)}</Fact>
      <Fact term="Region and stack">
        {p.app.region} · {p.app.stack}
      </Fact>
      <Fact term="Created">
        <Time at={p.app.createdAt} />
      </Fact>
      <Fact term="Dyno formation">{p.formation.length ? p.formation.map((f) => `${f.type}: ${f.quantity} × ${f.size}`).join(", ") : "none yet"}</Fact>
    </dl>
    {p.dynoStates.length ? (
      <p>
        {p.dynoStates.map((d) => (
          <>
            <span class="mono">{d.name}</span> <StateBadge state={d.state} />{" "}
          </>
        ))}
      </p>
    ) : null}
    <h2>Latest releases</h2>
    <ReleasesTable releases={p.releases} current={p.current} />
    <p>
      <a href={appHref(p.app.name, "activity")}>All activity</a>
    </p>
  </AppFrame>
);

/** An app's overview: where it answers, whether it runs, and its latest releases. */
export const overviewPages = new Hono<DashboardEnv>().get("/apps/:name", async (c) => {
  const found = await appOrLogin(c);
  if ("redirect" in found) return found.redirect;
  const { app } = found;
  const db = c.var.db;
  const urls = publicUrls(c.env);
  const releases = await listReleases(db, app, { ...parseRange(undefined, RELEASE_SORT_FIELDS), order: "desc", max: 5 });
  const dynos = await listDynos(db, app.id);
  return c.html(
    <OverviewView
      frame={frameOf(c, app.name)}
      app={app}
      web={webUrl(urls, app.name)}
      git={gitUrl(urls, app.name)}
      deployed={await hasDeployed(db, app.id)}
      formation={await listFormation(db, app.id)}
      dynoStates={dynos.map((d) => ({ name: d.name, state: toDynoJson(d, app).state }))}
      releases={releases.items}
      current={await currentVersion(db, app.id)}
    />,
  );
});
