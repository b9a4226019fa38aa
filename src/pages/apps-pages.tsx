import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow } from "../db/schema/index.ts";
import { ApiError } from "../errors.ts";
import { DEFAULT_PAGE_SIZE, parseRange } from "../lib/range.ts";
import { publicUrls, webUrl, type PublicUrls } from "../lib/urls.ts";
import { APP_SORT_FIELDS, createApp, listApps } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { appHref, field, href, redirectWith, sessionOrLogin, type DashboardCall, type DashboardEnv } from "./request.ts";
import { Layout, PostForm, Time, frameOf, type Frame } from "./layout.tsx";

interface AppsProps {
  frame: Frame;
  apps: AppRow[];
  more: boolean;
  urls: PublicUrls;
  error?: string;
  name?: string;
}

const AppsView: FC<AppsProps> = ({ frame, apps, more, urls, error, name }) => (
  <Layout frame={frame} current="apps">
    <h1>Apps</h1>
    <section class="panel" aria-labelledby="create">
      <h2 id="create">Create new app</h2>
      {error ? (
        <p class="flash flash-error" role="alert">
          {error}
        </p>
      ) : null}
      <PostForm action={href("/apps")} csrf={frame.csrf} label="Create new app">
        <div class="field-row">
          <div>
            <label for="app-name">App name</label>
            <input
              id="app-name"
              name="name"
              type="text"
              value={name ?? ""}
              maxlength={30}
              pattern="[a-z][a-z0-9\-]{1,28}[a-z0-9]"
              aria-describedby="app-name-hint"
            />
          </div>
          <button type="submit">Create app</button>
        </div>
        <p class="hint" id="app-name-hint">
          Names are unique across dynoplane: lowercase letters, digits and dashes, 3 to 30 characters. Leave it empty for a random name.
        </p>
      </PostForm>
    </section>
    <section class="panel spaced" aria-labelledby="your-apps">
      <h2 id="your-apps">Your apps</h2>
      {apps.length ? (
        <ul class="app-list">
          {apps.map((app) => (
            <li>
              <a class="app-name" href={appHref(app.name)}>
                {app.name}
              </a>
              <span class="muted app-meta">
                <a href={webUrl(urls, app.name)} rel="noopener">
                  {webUrl(urls, app.name)}
                </a>{" "}
                · {app.region} · {app.stack} · updated <Time at={app.updatedAt} />
              </span>
            </li>
          ))}
        </ul>
      ) : (
        <p>
          You have no apps yet. Create one above, or run <code>heroku create</code>.
        </p>
      )}
      {more ? (
        <p class="hint">
          Only the first {DEFAULT_PAGE_SIZE} apps are listed; use <code>heroku apps</code> for all of them.
        </p>
      ) : null}
    </section>
  </Layout>
);

async function render(c: DashboardCall, extra: { error?: string; name?: string; status?: 200 | 422 } = {}) {
  const page = await listApps(c.var.db, c.var.session!.actor, parseRange(undefined, APP_SORT_FIELDS));
  return c.html(
    <AppsView frame={frameOf(c, "Apps")} apps={page.items} more={!!page.nextRange} urls={publicUrls(c.env)} error={extra.error} name={extra.name} />,
    extra.status ?? 200,
  );
}

/** The apps list and "Create new app" (a given, globally unique name or a random one). */
export const appsPages = new Hono<DashboardEnv>()
  .get("/", (c) => c.redirect(href("/apps"), 302))
  .get("/apps", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    return render(c);
  })
  .post("/apps", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const name = (await field(c, "name")).toLowerCase();
    try {
      const app = await createApp(requestContext(c, auth.session.actor), { name: name || null });
      return redirectWith(c, appHref(app.name), { kind: "notice", text: `Created ${app.name}.` });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return render(c, { error: err.message, name, status: 422 });
    }
  });
