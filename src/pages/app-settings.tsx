import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { ApiError, invalidParams } from "../errors.ts";
import { gitUrl, publicUrls } from "../lib/urls.ts";
import { type AppAccess, deleteApp } from "../services/apps/apps.ts";
import { getConfigVars, setConfigVars } from "../services/apps/config-vars.ts";
import { appHref, field, href, rawField, type DashboardCall, type DashboardEnv } from "./request.ts";
import { appForm, appOrLogin } from "./app-support.tsx";
import { AppFrame, Fact, PostForm, frameOf, type Frame } from "./layout.tsx";

const HIDDEN = "••••••••";

interface SettingsProps {
  frame: Frame;
  app: AppAccess;
  git: string;
  config: Record<string, string>;
  reveal: boolean;
}

const ConfigVars: FC<{ frame: Frame; app: string; config: Record<string, string>; reveal: boolean }> = ({ frame, app, config, reveal }) => {
  const keys = Object.keys(config);
  const settings = appHref(app, "settings");
  return (
    <section aria-labelledby="config-vars">
      <h2 id="config-vars">Config vars</h2>
      <p class="hint">
        Every change cuts a new release and restarts the app's dynos.{" "}
        {keys.length ? reveal ? <a href={settings}>Hide config vars</a> : <a href={`${settings}?reveal=1#config-vars`}>Reveal config vars</a> : null}
      </p>
      {keys.length ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Value</th>
                <th scope="col">Remove</th>
              </tr>
            </thead>
            <tbody>
              {keys.map((key, i) => (
                <tr>
                  <td class="mono">{key}</td>
                  <td>
                    {reveal ? (
                      <PostForm action={appHref(app, "config")} csrf={frame.csrf} label={`Edit ${key}`}>
                        <input type="hidden" name="key" value={key} />
                        <label for={`config-value-${i}`} class="visually-hidden">
                          Value of {key}
                        </label>
                        <input id={`config-value-${i}`} name="value" type="text" value={config[key]} class="mono" />
                        <button type="submit" class="secondary">
                          Save
                        </button>
                      </PostForm>
                    ) : (
                      <span class="mono" role="img" aria-label="hidden value">
                        {HIDDEN}
                      </span>
                    )}
                  </td>
                  <td>
                    <PostForm action={appHref(app, "config/remove")} csrf={frame.csrf} label={`Remove ${key}`}>
                      <input type="hidden" name="key" value={key} />
                      <button type="submit" class="secondary" aria-label={`Remove ${key}`}>
                        Remove
                      </button>
                    </PostForm>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p>No config vars yet.</p>
      )}
      <PostForm action={appHref(app, "config")} csrf={frame.csrf} label="Add a config var">
        <div class="field-row">
          <div>
            <label for="config-key">Key</label>
            <input id="config-key" name="key" type="text" class="mono" required pattern="[A-Za-z_][A-Za-z0-9_]*" placeholder="KEY" />
          </div>
          <div>
            <label for="config-value">Value</label>
            <input id="config-value" name="value" type="text" class="mono" placeholder="value" />
          </div>
          <button type="submit">Add</button>
        </div>
      </PostForm>
    </section>
  );
};

const SettingsView: FC<SettingsProps> = ({ frame, app, git, config, reveal }) => (
  <AppFrame frame={frame} app={app.name} tab="settings">
    <h2>App information</h2>
    <dl>
      <Fact term="App name">{app.name}</Fact>
      <Fact term="Region">{app.region}</Fact>
      <Fact term="Stack">{app.stack}</Fact>
      <Fact term="Git URL">
        <code>{git}</code>
      </Fact>
    </dl>
    <ConfigVars frame={frame} app={app.name} config={config} reveal={reveal} />
    {app.role === "owner" ? <DeleteApp frame={frame} app={app.name} /> : <p class="hint">Only the app's owner, {app.ownerEmail}, can delete it.</p>}
  </AppFrame>
);

const DeleteApp: FC<{ frame: Frame; app: string }> = ({ frame, app }) => (
  <section class="danger-zone" aria-labelledby="delete-app">
    <h2 id="delete-app">Delete app</h2>
    <p>Deleting {app} removes its config, releases and dynos at once. This cannot be undone.</p>
    <PostForm action={appHref(app, "delete")} csrf={frame.csrf} label="Delete app">
      <div class="field-row">
        <div>
          <label for="confirm-name">Type the app's name, {app}, to confirm</label>
          <input id="confirm-name" name="confirm" type="text" autocomplete="off" required />
        </div>
        <button type="submit" class="danger">
          Delete app
        </button>
      </div>
    </PostForm>
  </section>
);

/** Applies one config patch from a form and reports back on the settings page. */
function patchConfig(read: (c: DashboardCall) => Promise<{ patch: Record<string, string | null>; done: string }>) {
  return appForm(
    (app) => `${appHref(app.name, "settings")}?reveal=1#config-vars`,
    async ({ c, app, ctx }) => {
      const { patch, done } = await read(c);
      const { release } = await setConfigVars(ctx, app, patch);
      return release ? `${done} Released v${release.version}.` : "Nothing changed.";
    },
  );
}

/** Settings: app facts, config vars (reveal, add, edit, remove) and deleting the app by name. */
export const settingsPages = new Hono<DashboardEnv>()
  .get("/apps/:name/settings", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app } = found;
    const config = await getConfigVars(c.var.db, app.id);
    c.header("Cache-Control", "no-store");
    return c.html(
      <SettingsView
        frame={frameOf(c, `${app.name} · Settings`)}
        app={app}
        git={gitUrl(publicUrls(c.env), app.name)}
        config={config}
        reveal={c.req.query("reveal") === "1"}
      />,
    );
  })
  .post(
    "/apps/:name/config",
    patchConfig(async (c) => {
      const key = await field(c, "key");
      return { patch: { [key]: await rawField(c, "value") }, done: `Set ${key}.` };
    }),
  )
  .post(
    "/apps/:name/config/remove",
    patchConfig(async (c) => {
      const key = await field(c, "key");
      return { patch: { [key]: null }, done: `Removed ${key}.` };
    }),
  )
  .post(
    "/apps/:name/delete",
    appForm(
      (app) => `${appHref(app.name, "settings")}#delete-app`,
      async ({ c, app, ctx }) => {
        if (app.role !== "owner") throw new ApiError("forbidden", `Only the app's owner, ${app.ownerEmail}, can delete it.`);
        if ((await field(c, "confirm")) !== app.name) throw invalidParams(`The name you typed does not match ${app.name}; nothing was deleted.`);
        await deleteApp(ctx, app);
        return { text: `Deleted ${app.name}.`, to: href("/apps") };
      },
    ),
  );
