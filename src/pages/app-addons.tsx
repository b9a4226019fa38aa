import { type Context, Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow, PgBackupScheduleRow, PgTransferRow } from "../db/schema/index.ts";
import { ApiError, invalidParams } from "../errors.ts";
import { apiState } from "../serializers/addon.ts";
import { PLANS, POSTGRES } from "../services/addons/catalog.ts";
import { databaseUrl, postgresProvider } from "../services/addons/providers/postgres.ts";
import { type AddonView, addonCredentials, createAddon, destroyAddon, findAddon, rotateCredentials } from "../services/addons/addons.ts";
import { listSchedules, scheduleBackups, unscheduleBackups } from "../services/addons/backup-schedules.ts";
import { backupDownloadUrl, captureBackup, getTransfer, listTransfers, restoreBackup } from "../services/addons/backups.ts";
import { backupName, backupUrl } from "../services/addons/transfers.ts";
import { requestContext } from "../services/context.ts";
import type { AppAccess } from "../services/apps/apps.ts";
import { appForm, appOrLogin, StateBadge } from "./app-support.tsx";
import { appHref, field, type DashboardEnv } from "./request.ts";
import { AppFrame, frameOf, PostForm, Time, type Frame } from "./layout.tsx";

const planLabel = (name: string) => PLANS.find((p) => p.name === name)?.humanName ?? name;
const STATE_WORDS: Record<string, string> = { provisioning: "creating", provisioned: "created", deprovisioned: "failed" };

/** The add-ons section of an app's Resources page: each add-on, and "Provision add-on". */
export const AddonsSection: FC<{ frame: Frame; app: AppRow; views: AddonView[] }> = ({ frame, app, views }) => (
  <section aria-labelledby="addons-heading">
    <h2 id="addons-heading">Add-ons</h2>
    {views.length ? (
      <div class="table-wrap">
        <table>
          <caption class="muted">add-ons of {app.name}</caption>
          <thead>
            <tr>
              <th scope="col">Add-on</th>
              <th scope="col">Plan</th>
              <th scope="col">Attached as</th>
              <th scope="col">State</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {views.map((v) => (
              <tr>
                <td class="mono">
                  {v.addon.state === "provisioned" && v.addon.appId === app.id ? (
                    <a href={appHref(app.name, `addons/${encodeURIComponent(v.addon.name)}`)}>{v.addon.name}</a>
                  ) : (
                    v.addon.name
                  )}
                </td>
                <td>{planLabel(v.addon.plan)}</td>
                <td class="mono">
                  {v.attachments
                    .filter((a) => a.app.id === app.id)
                    .map((a) => a.attachment.name)
                    .join(", ") || "—"}
                </td>
                <td>
                  <StateBadge state={STATE_WORDS[apiState(v.addon)] ?? v.addon.state} />
                  {v.addon.state === "failed" && v.addon.error ? <p class="muted">{v.addon.error}</p> : null}
                </td>
                <td>
                  {v.addon.appId === app.id ? (
                    <PostForm
                      action={appHref(app.name, `addons/${encodeURIComponent(v.addon.name)}/destroy`)}
                      csrf={frame.csrf}
                      label={`Remove ${v.addon.name}`}
                    >
                      <label for={`remove-${v.addon.id}`}>Type {app.name} to remove it</label>
                      <input id={`remove-${v.addon.id}`} name="confirm" autocomplete="off" required />
                      <button type="submit" class="danger">
                        Remove {v.addon.name}
                      </button>
                    </PostForm>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    ) : (
      <p class="muted">No add-ons yet.</p>
    )}
    <PostForm action={appHref(app.name, "addons")} csrf={frame.csrf} label="Provision add-on">
      <div class="field-row">
        <div>
          <label for="addon-plan">Heroku Postgres plan</label>
          <select id="addon-plan" name="plan">
            {PLANS.filter((p) => p.serviceId === POSTGRES.id).map((p) => (
              <option value={p.name} selected={p.default}>
                {p.humanName} ({p.connectionLimit} connections, {p.storageMb >= 1024 ? `${p.storageMb / 1024} GB` : `${p.storageMb} MB`})
              </option>
            ))}
          </select>
        </div>
        <button type="submit">Provision add-on</button>
      </div>
    </PostForm>
  </section>
);

/** `1.5 MB`, `320 kB`. */
const size = (bytes: number) => (bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} kB`);

/** A transfer's state in words, as `pg:backups` says it. */
function transferStatus(t: PgTransferRow): string {
  if (t.succeeded) return t.warnings ? `Finished with ${t.warnings} warnings` : "Completed";
  if (t.canceledAt) return "Canceled";
  if (t.finishedAt) return "Failed";
  return t.startedAt ? "Running" : "Pending";
}

/**
 * A database's Durability section: its backups (capture, download, restore by typing the
 * app's name) and its daily schedule.
 */
const DurabilitySection: FC<{ frame: Frame; app: AppRow; view: AddonView; transfers: PgTransferRow[]; schedule: PgBackupScheduleRow | null }> = ({
  frame,
  app,
  view,
  transfers,
  schedule,
}) => {
  const base = appHref(app.name, `addons/${encodeURIComponent(view.addon.name)}`);
  const backups = transfers.filter((t) => t.kind === "backup").reverse();
  const plan = PLANS.find((p) => p.name === view.addon.plan)!;
  return (
    <section aria-labelledby="durability-heading">
      <h3 id="durability-heading">Durability</h3>
      <p>
        Backups are <code>pg_dump</code> archives kept in the platform's blob store, not on the database's disk: {plan.backups.manual} taken by hand and{" "}
        {plan.backups.scheduled} daily ones are kept. A restore fills a fresh database that takes this one's place only once it succeeded.
      </p>
      {backups.length ? (
        <div class="table-wrap">
          <table>
            <caption class="muted">backups of {view.addon.name}</caption>
            <thead>
              <tr>
                <th scope="col">Backup</th>
                <th scope="col">Taken</th>
                <th scope="col">Status</th>
                <th scope="col">Size</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {backups.map((t) => (
                <tr>
                  <td class="mono">{backupName(t)}</td>
                  <td>
                    <Time at={t.createdAt} />
                  </td>
                  <td>{transferStatus(t)}</td>
                  <td>{t.succeeded ? size(t.processedBytes) : "—"}</td>
                  <td>
                    {t.succeeded ? (
                      <>
                        <a href={`${base}/backups/${t.num}/download`} download>
                          Download {backupName(t)}
                        </a>
                        <PostForm action={`${base}/backups/${t.num}/restore`} csrf={frame.csrf} label={`Restore ${backupName(t)}`}>
                          <label for={`restore-${t.num}`}>
                            Type {app.name} to replace the database's data with {backupName(t)}
                          </label>
                          <input id={`restore-${t.num}`} name="confirm" autocomplete="off" required />
                          <button type="submit" class="danger">
                            Restore {backupName(t)}
                          </button>
                        </PostForm>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No backups yet.</p>
      )}
      <PostForm action={`${base}/backups`} csrf={frame.csrf} label="Capture backup">
        <button type="submit">Capture backup</button>
      </PostForm>
      <h4>Daily backups</h4>
      {schedule ? (
        <>
          <p>
            Every day at {String(schedule.hour).padStart(2, "0")}:00 {schedule.timezone}.
          </p>
          <PostForm action={`${base}/schedule/remove`} csrf={frame.csrf} label="Stop daily backups">
            <button type="submit">Stop daily backups</button>
          </PostForm>
        </>
      ) : (
        <p class="muted">Not scheduled.</p>
      )}
      <PostForm action={`${base}/schedule`} csrf={frame.csrf} label="Schedule daily backups">
        <div class="field-row">
          <div>
            <label for="schedule-hour">Hour</label>
            <select id="schedule-hour" name="hour">
              {Array.from({ length: 24 }, (_, h) => (
                <option value={String(h)} selected={(schedule?.hour ?? 2) === h}>
                  {String(h).padStart(2, "0")}:00
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="schedule-timezone">Time zone</label>
            <input id="schedule-timezone" name="timezone" value={schedule?.timezone ?? "UTC"} autocomplete="off" required />
          </div>
          <button type="submit">{schedule ? "Change schedule" : "Schedule daily backups"}</button>
        </div>
      </PostForm>
    </section>
  );
};

/** A database's page: plan and use, its credentials on request, rotation, durability and removal. */
const DatabaseView: FC<{
  frame: Frame;
  app: AppRow;
  view: AddonView;
  stats: { version: string; sizeBytes: number; tables: number | null; connections: number } | null;
  creds: Awaited<ReturnType<typeof addonCredentials>>;
  transfers: PgTransferRow[];
  schedule: PgBackupScheduleRow | null;
}> = ({ frame, app, view, stats, creds, transfers, schedule }) => {
  const plan = PLANS.find((p) => p.name === view.addon.plan)!;
  return (
    <AppFrame frame={frame} app={app.name} tab="resources">
      <h2>{view.addon.name}</h2>
      <dl class="facts">
        <dt>Plan</dt>
        <dd>{plan.humanName}</dd>
        <dt>Attached as</dt>
        <dd class="mono">{view.attachments.map((a) => `${a.attachment.name} on ${a.app.name}`).join(", ")}</dd>
        <dt>Created</dt>
        <dd>
          <Time at={view.addon.createdAt} />
        </dd>
        {stats ? (
          <>
            <dt>PostgreSQL</dt>
            <dd>{stats.version}</dd>
            <dt>Data size</dt>
            <dd>
              {(stats.sizeBytes / 1024 / 1024).toFixed(1)} MB of {plan.storageMb >= 1024 ? `${plan.storageMb / 1024} GB` : `${plan.storageMb} MB`}
            </dd>
            <dt>Tables</dt>
            <dd>{stats.tables ?? "unknown (no connection left)"}</dd>
            <dt>Connections</dt>
            <dd>
              {stats.connections} of {plan.connectionLimit}
            </dd>
          </>
        ) : (
          <>
            <dt>Use</dt>
            <dd class="muted">The database server did not answer just now.</dd>
          </>
        )}
      </dl>
      <details class="credentials">
        <summary>View credentials</summary>
        <p class="muted">Apps read these from the DATABASE_URL config var: they change when the credentials are rotated.</p>
        <dl class="facts mono">
          <dt>Host</dt>
          <dd>{creds.host}</dd>
          <dt>Port</dt>
          <dd>{creds.port}</dd>
          <dt>Database</dt>
          <dd>{creds.database}</dd>
          <dt>User</dt>
          <dd>{creds.user}</dd>
          <dt>Password</dt>
          <dd>{creds.password}</dd>
          <dt>URI</dt>
          <dd>{databaseUrl(creds)}</dd>
        </dl>
      </details>
      <DurabilitySection frame={frame} app={app} view={view} transfers={transfers.filter((t) => t.addonId === view.addon.id)} schedule={schedule} />
      <h3>Rotate credentials</h3>
      <p>A new password: the old one stops working at once, the apps it is attached to get the new URL and restart.</p>
      <PostForm action={appHref(app.name, `addons/${encodeURIComponent(view.addon.name)}/rotate`)} csrf={frame.csrf} label="Rotate credentials">
        <label for="rotate-confirm">Type {app.name} to confirm</label>
        <input id="rotate-confirm" name="confirm" autocomplete="off" required />
        <button type="submit">Rotate credentials</button>
      </PostForm>
      <h3>Remove add-on</h3>
      <p>The database and all its data are deleted, and its config vars removed.</p>
      <PostForm action={appHref(app.name, `addons/${encodeURIComponent(view.addon.name)}/destroy`)} csrf={frame.csrf} label="Remove add-on">
        <label for="destroy-confirm">Type {app.name} to confirm</label>
        <input id="destroy-confirm" name="confirm" autocomplete="off" required />
        <button type="submit" class="danger">
          Remove {view.addon.name}
        </button>
      </PostForm>
    </AppFrame>
  );
};

/** The app's own provisioned database named in the path; any other is not found. */
async function ownDatabase(c: Context<DashboardEnv>, app: AppAccess): Promise<AddonView> {
  const view = await findAddon(c.var.db, c.var.session!.actor, c.req.param("addon") ?? "", app);
  if (view.addon.appId !== app.id || view.addon.state !== "provisioned") throw new ApiError("not_found", "Couldn't find that database.", "addon");
  return view;
}

/** Add-ons on the dashboard: provision, a database's page (credentials, rotation), removal. */
export const addonsPages = new Hono<DashboardEnv>()
  .post(
    "/apps/:name/addons",
    appForm(
      (app) => appHref(app.name, "resources"),
      async ({ c, app, ctx }) => {
        const { view } = await createAddon(ctx, app, { plan: (await field(c, "plan")) || POSTGRES.name });
        return `Provisioning ${view.addon.name}; the app restarts with DATABASE_URL once it is available.`;
      },
    ),
  )
  .get("/apps/:name/addons/:addon", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app, session } = found;
    const view = await findAddon(c.var.db, session.actor, c.req.param("addon"), app);
    if (view.addon.appId !== app.id || view.addon.state !== "provisioned") throw new ApiError("not_found", "Couldn't find that database.", "addon");
    const creds = await addonCredentials(c.var.db, view, c.env);
    const stats = await postgresProvider(c.env)
      ?.stats(view.addon.providerId!, creds)
      .catch(() => null);
    const ctx = requestContext(c, session.actor);
    const [transfers, [schedule]] = await Promise.all([listTransfers(ctx, app.id), listSchedules(ctx, view)]);
    return c.html(
      <DatabaseView
        frame={frameOf(c, `${view.addon.name} · ${app.name}`)}
        app={app}
        view={view}
        stats={stats ?? null}
        creds={creds}
        transfers={transfers}
        schedule={schedule ?? null}
      />,
    );
  })
  .post("/apps/:name/addons/:addon/backups", (c) =>
    appForm(
      (app) => appHref(app.name, `addons/${encodeURIComponent(c.req.param("addon"))}`),
      async ({ app, ctx }) => {
        const t = await captureBackup(ctx, await ownDatabase(c, app));
        return t.finishedAt
          ? `Backup ${backupName(t)} could not start: ${t.logs.at(-1)?.message ?? "no host took it"}`
          : `Capturing ${backupName(t)}; reload to see it finish.`;
      },
    )(c),
  )
  .get("/apps/:name/addons/:addon/backups/:num/download", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app, session } = found;
    await ownDatabase(c, app);
    const { url } = await backupDownloadUrl(requestContext(c, session.actor), app.id, c.req.param("num"));
    return c.redirect(url, 303);
  })
  .post("/apps/:name/addons/:addon/backups/:num/restore", (c) =>
    appForm(
      (app) => appHref(app.name, `addons/${encodeURIComponent(c.req.param("addon"))}`),
      async ({ app, ctx }) => {
        const view = await ownDatabase(c, app);
        const backup = await getTransfer(ctx, app.id, c.req.param("num"));
        if ((await field(c, "confirm")) !== app.name) throw invalidParams(`The name you typed does not match ${app.name}; nothing was restored.`);
        const t = await restoreBackup(ctx, view, backupUrl(c.env.API_HOST, backup.id), []);
        return t.finishedAt
          ? `Restore ${backupName(t)} could not start: ${t.logs.at(-1)?.message ?? "no host took it"}`
          : `Restoring ${backupName(backup)} into ${view.addon.name} (${backupName(t)}); the database is replaced once it finished.`;
      },
    )(c),
  )
  .post("/apps/:name/addons/:addon/schedule", (c) =>
    appForm(
      (app) => appHref(app.name, `addons/${encodeURIComponent(c.req.param("addon"))}`),
      async ({ app, ctx }) => {
        const view = await ownDatabase(c, app);
        const s = await scheduleBackups(ctx, view, { hour: await field(c, "hour"), timezone: await field(c, "timezone") });
        return `${view.addon.name} is backed up every day at ${String(s.hour).padStart(2, "0")}:00 ${s.timezone}.`;
      },
    )(c),
  )
  .post("/apps/:name/addons/:addon/schedule/remove", (c) =>
    appForm(
      (app) => appHref(app.name, `addons/${encodeURIComponent(c.req.param("addon"))}`),
      async ({ app, ctx }) => {
        const view = await ownDatabase(c, app);
        const [s] = await listSchedules(ctx, view);
        if (s) await unscheduleBackups(ctx, view, s.id);
        return `${view.addon.name} is no longer backed up daily; its backups stay.`;
      },
    )(c),
  )
  .post("/apps/:name/addons/:addon/rotate", (c) =>
    appForm(
      (app) => appHref(app.name, `addons/${encodeURIComponent(c.req.param("addon"))}`),
      async ({ app, ctx, session }) => {
        if ((await field(c, "confirm")) !== app.name) throw invalidParams(`The name you typed does not match ${app.name}; the credentials were not rotated.`);
        const view = await findAddon(c.var.db, session.actor, c.req.param("addon"), app);
        if (view.addon.appId !== app.id) throw new ApiError("forbidden", `${view.addon.name} belongs to ${view.app.name}.`);
        await rotateCredentials(ctx, view);
        return `Rotated the credentials of ${view.addon.name}; the app restarts with the new DATABASE_URL.`;
      },
    )(c),
  )
  .post(
    "/apps/:name/addons/:addon/destroy",
    appForm(
      (app) => appHref(app.name, "resources"),
      async ({ c, app, ctx }) => {
        if ((await field(c, "confirm")) !== app.name) throw invalidParams(`The name you typed does not match ${app.name}; nothing was removed.`);
        const view = await destroyAddon(ctx, app, c.req.param("addon") ?? "");
        return `Removed ${view.addon.name}.`;
      },
    ),
  );
