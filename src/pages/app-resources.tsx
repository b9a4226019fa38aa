import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow, FormationRow } from "../db/schema/index.ts";
import { eq } from "drizzle-orm";
import type { Database } from "../db/client.ts";
import { keepAlive } from "../db/schema/index.ts";
import type { Bindings } from "../env.ts";
import { invalidParams } from "../errors.ts";
import { getAppFeature, KEEP_ALIVE, setAppFeature } from "../services/apps/features.ts";
import { type KeepAliveDecision, keepAliveDecisions, setBedtimeStart } from "../services/eco/keep-alive.ts";
import { KeepAliveSection } from "./keep-alive-section.tsx";
import { DYNO_SIZES, isOneOffType } from "../protocol/host.ts";
import { toDynoJson } from "../serializers/dyno.ts";
import { type AddonView, listAddonsForApp } from "../services/addons/addons.ts";
import { AddonsSection } from "./app-addons.tsx";
import { listDynos, restartDynos, stopDynos } from "../services/dynos/dynos.ts";
import { listFormation, MAX_QUANTITY, updateFormation } from "../services/dynos/formation.ts";
import { appHref, field, type DashboardEnv } from "./request.ts";
import { appForm, appOrLogin, StateBadge } from "./app-support.tsx";
import { AppFrame, PostForm, Time, frameOf, type Frame } from "./layout.tsx";

type DynoView = { name: string; type: string; command: string; state: string; size: string; updatedAt: Date; release: number };

const ProcessType: FC<{ frame: Frame; app: string; f: FormationRow; dynos: DynoView[] }> = ({ frame, app, f, dynos }) => {
  const id = `scale-${f.type}`;
  return (
    <section class="process" aria-labelledby={`${id}-heading`}>
      <h3 id={`${id}-heading`}>{f.type}</h3>
      <p class="muted mono">{f.command}</p>
      <PostForm action={appHref(app, `formation/${encodeURIComponent(f.type)}`)} csrf={frame.csrf} label={`Scale ${f.type}`}>
        <div class="field-row">
          <div>
            <label for={`${id}-quantity`}>Dynos</label>
            <input id={`${id}-quantity`} name="quantity" type="number" min={0} max={MAX_QUANTITY} value={String(f.quantity)} required />
          </div>
          <div>
            <label for={`${id}-size`}>Size</label>
            <select id={`${id}-size`} name="size">
              {Object.keys(DYNO_SIZES).map((size) => (
                <option value={size} selected={size === f.size}>
                  {size}
                </option>
              ))}
            </select>
          </div>
          <button type="submit">Save {f.type}</button>
        </div>
      </PostForm>
      {dynos.length ? (
        <div class="table-wrap">
          <table>
            <caption class="muted">{f.type} dynos</caption>
            <thead>
              <tr>
                <th scope="col">Dyno</th>
                <th scope="col">State</th>
                <th scope="col" class="optional">
                  Release
                </th>
                <th scope="col">Since</th>
              </tr>
            </thead>
            <tbody>
              {dynos.map((d) => (
                <tr>
                  <td class="mono">{d.name}</td>
                  <td>
                    <StateBadge state={d.state} />
                  </td>
                  <td class="optional">v{d.release}</td>
                  <td>
                    <Time at={d.updatedAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No {f.type} dynos: scaled to 0.</p>
      )}
      {dynos.length ? (
        <PostForm action={appHref(app, "restart")} csrf={frame.csrf} class="actions">
          <input type="hidden" name="type" value={f.type} />
          <button type="submit" class="secondary">
            Restart {f.type} dynos
          </button>
        </PostForm>
      ) : null}
    </section>
  );
};

/** The one-off dynos running now (`heroku run:detached`), each with a stop button. */
const OneOffDynos: FC<{ frame: Frame; app: string; dynos: DynoView[] }> = ({ frame, app, dynos }) => (
  <section class="process" aria-labelledby="one-off-heading">
    <h3 id="one-off-heading">One-off dynos</h3>
    <div class="table-wrap">
      <table>
        <caption class="muted">one-off dynos running now</caption>
        <thead>
          <tr>
            <th scope="col">Dyno</th>
            <th scope="col">Command</th>
            <th scope="col">State</th>
            <th scope="col">Since</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {dynos.map((d) => (
            <tr>
              <td class="mono">{d.name}</td>
              <td class="mono">{d.command}</td>
              <td>
                <StateBadge state={d.state} />
              </td>
              <td>
                <Time at={d.updatedAt} />
              </td>
              <td>
                <PostForm action={appHref(app, `dynos/${encodeURIComponent(d.name)}/stop`)} csrf={frame.csrf} label={`Stop ${d.name}`}>
                  <button type="submit" class="secondary">
                    Stop {d.name}
                  </button>
                </PostForm>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  </section>
);

interface KeepAliveView {
  enabled: boolean;
  decision: KeepAliveDecision | null;
  startHour: number | null;
}

const ResourcesView: FC<{ frame: Frame; app: AppRow; formation: FormationRow[]; dynos: DynoView[]; addons: AddonView[]; keepAlive: KeepAliveView }> = ({
  frame,
  app,
  formation,
  dynos,
  addons,
  keepAlive,
}) => (
  <AppFrame frame={frame} app={app.name} tab="resources">
    <h2>Dynos</h2>
    {formation.length ? (
      formation.map((f) => <ProcessType frame={frame} app={app.name} f={f} dynos={dynos.filter((d) => d.type === f.type)} />)
    ) : (
      <p>No process types yet. Deploy code with a Procfile (git push heroku main) and its process types appear here.</p>
    )}
    {dynos.some((d) => isOneOffType(d.type)) ? <OneOffDynos frame={frame} app={app.name} dynos={dynos.filter((d) => isOneOffType(d.type))} /> : null}
    {dynos.length ? (
      <PostForm action={appHref(app.name, "restart")} csrf={frame.csrf} class="actions">
        <button type="submit" class="secondary">
          Restart all dynos
        </button>
      </PostForm>
    ) : null}
    <KeepAliveSection frame={frame} app={app.name} {...keepAlive} />
    <AddonsSection frame={frame} app={app} views={addons} />
  </AppFrame>
);

/** Whether the app has keep-alive, and what the pinger does with it now. */
async function keepAliveView(db: Database, env: Bindings, app: AppRow): Promise<KeepAliveView> {
  const feature = await getAppFeature(db, app, KEEP_ALIVE);
  const [row] = await db.select({ startHour: keepAlive.bedtimeStartHour }).from(keepAlive).where(eq(keepAlive.appId, app.id));
  const decision = feature.enabled ? ((await keepAliveDecisions(db, env, new Date(), app.ownerId)).decisions.find((d) => d.appId === app.id) ?? null) : null;
  return { enabled: feature.enabled, decision, startHour: row?.startHour ?? null };
}

/** An app's process types and dynos: scaling quantity and size, restarts, and keep-alive. */
export const resourcesPages = new Hono<DashboardEnv>()
  .get("/apps/:name/resources", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app } = found;
    const dynos = (await listDynos(c.var.db, app.id)).map((d) => ({
      name: d.name,
      type: d.type,
      command: d.command,
      state: toDynoJson(d, app).state,
      size: d.size,
      updatedAt: d.stateChangedAt,
      release: d.releaseVersion,
    }));
    return c.html(
      <ResourcesView
        frame={frameOf(c, `${app.name} · Resources`)}
        app={app}
        formation={await listFormation(c.var.db, app.id)}
        dynos={dynos}
        addons={await listAddonsForApp(c.var.db, app)}
        keepAlive={await keepAliveView(c.var.db, c.env, app)}
      />,
    );
  })
  .post(
    "/apps/:name/keep-alive",
    appForm(resources, async ({ c, app, ctx }) => {
      const [enabled, bedtime] = [await field(c, "enabled"), await field(c, "bedtime")];
      if (enabled !== "on" && enabled !== "off") throw invalidParams("Keep-alive is either on or off.");
      await setBedtimeStart(c.var.db, app.id, bedtime === "auto" || bedtime === "" ? null : Number(bedtime));
      await setAppFeature(ctx, app, KEEP_ALIVE, enabled === "on");
      return `Keep-alive is ${enabled}.`;
    }),
  )
  .post(
    "/apps/:name/formation/:type",
    appForm(resources, async ({ c, app, ctx }) => {
      const [quantity, size] = [await field(c, "quantity"), await field(c, "size")];
      const update = { type: c.req.param("type") ?? "", ...(quantity && { quantity }), ...(size && { size }) };
      const { summary } = await updateFormation(ctx, app, [update]);
      return `Scaled to ${summary}.`;
    }),
  )
  .post(
    "/apps/:name/dynos/:dyno/stop",
    appForm(resources, async ({ c, app, ctx }) => {
      const dyno = c.req.param("dyno") ?? "";
      await stopDynos(ctx, app, dyno);
      // A dyno of the formation comes back (as on Heroku); a one-off dyno ends for good.
      const again = isOneOffType(dyno.split(".")[0]!) ? "" : " The platform starts it again, as its formation asks.";
      return `Stopping ${dyno}.${again}`;
    }),
  )
  .post(
    "/apps/:name/restart",
    appForm(resources, async ({ c, app, ctx }) => {
      const type = (await field(c, "type")) || undefined;
      await restartDynos(ctx, app, type);
      return type ? `Restarting the ${type} dynos.` : "Restarting all dynos.";
    }),
  );

/** The Resources tab, where its forms come back to. */
function resources(app: { name: string }): string {
  return appHref(app.name, "resources");
}
