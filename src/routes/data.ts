import { type Context, Hono } from "hono";
import { database } from "../middleware/database.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { PLANS, POSTGRES } from "../services/addons/catalog.ts";
import { databaseUrl, postgresProvider } from "../services/addons/providers/postgres.ts";
import { z } from "zod";
import { jsonBody } from "../lib/validate.ts";
import { type AddonView, addonCredentials, endDatabaseSessions, findAddon, resetDatabase, rotateCredentials } from "../services/addons/addons.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { verifyToken } from "../auth/signing.ts";
import { listSchedules, scheduleBackups, scheduleJson, unscheduleBackups } from "../services/addons/backup-schedules.ts";
import {
  backupDownloadUrl,
  backupDump,
  cancelTransfer,
  captureBackup,
  deleteBackup,
  getTransfer,
  listTransfers,
  restoreBackup,
} from "../services/addons/backups.ts";
import { copyDatabase } from "../services/addons/copies.ts";
import { transferJson } from "../services/addons/transfers.ts";

/** A Postgres add-on of an app the caller owns or collaborates on, by id or name; others are not found. */
async function databaseOf(c: Context<AppEnv>): Promise<AddonView> {
  const view = await findAddon(c.var.db, c.var.actor, c.req.param("addon")!);
  const reachable = await findAppForActor(c.var.db, c.var.actor, view.app.id).then(
    () => true,
    () => false,
  );
  if (view.addon.service !== POSTGRES.name || !reachable) {
    throw new ApiError("not_found", "Couldn't find that database.", "addon");
  }
  if (view.addon.state !== "provisioned") throw new ApiError("not_found", `${view.addon.name} is not yet provisioned.`, "addon");
  return view;
}

const humanSize = (bytes: number) =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GB` : bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MB` : `${Math.round(bytes / 1024)} kB`;

/** What `pg:reset` sends: the extensions to make in the emptied database (`--extensions`). */
const resetBody = z.object({ extensions: z.array(z.string().max(63)).max(50).optional() }).strict();

/** What `pg:backups:restore` sends: one of the platform's backups (its `to_url`) and extensions to make first. */
const restoreBody = z.object({ backup_url: z.string().max(2048), extensions: z.array(z.string().max(63)).max(20).optional() }).strict();

/** What `pg:copy SOURCE TARGET` sends: both databases by name and current URL. */
const copyBody = z.object({
  from_name: z.string().max(255).optional(),
  from_url: z.string().max(2048),
  to_name: z.string().max(255).optional(),
  to_url: z.string().max(2048),
});

/** What `pg:backups:schedule --at '02:00 Europe/Istanbul'` sends. */
const scheduleBody = z.object({
  hour: z.union([z.string().max(2), z.number().int()]),
  timezone: z.string().max(64).optional(),
  schedule_name: z.string().max(64).optional(),
});

/** The default credential as the data API describes it (`pg:credentials`, `pg:credentials:url`). */
function credentialJson(creds: Awaited<ReturnType<typeof addonCredentials>>, connections: number, withPassword: boolean) {
  return {
    uuid: null,
    name: "default",
    state: "active",
    database: creds.database,
    host: creds.host,
    port: creds.port,
    credentials: [{ user: creds.user, ...(withPassword ? { password: creds.password } : {}), state: "active", connections }],
  };
}

/**
 * The data API the CLI's `pg:*` commands call on `HEROKU_DATA_HOST` (the API's own host and
 * port here): `pg:info`, `pg:credentials`, `pg:credentials:url`, `pg:credentials:rotate`,
 * `pg:killall`, `pg:reset`, `pg:copy` and `pg:backups*` (src/services/addons/backups.ts).
 * (`pg:ps`, `pg:kill`, `pg:locks` and the like run the user's own psql with the app's
 * DATABASE_URL.)
 */
export const dataRoutes = new Hono<AppEnv>()
  .get("/client/v11/databases/:addon", async (c) => {
    const view = await databaseOf(c);
    const provider = postgresProvider(c.env);
    if (!provider) throw new ApiError("unavailable", "This platform offers no heroku-postgresql add-ons.");
    const plan = PLANS.find((p) => p.name === view.addon.plan)!;
    const creds = await addonCredentials(c.var.db, view, c.env);
    const stats = await provider.stats(view.addon.providerId!, creds);
    const limitBytes = plan.storageMb * 1024 * 1024;
    return c.json({
      addon_id: view.addon.id,
      name: view.addon.name,
      plan: plan.name,
      resource_url: databaseUrl(creds),
      info: [
        { name: "Plan", values: [plan.humanName] },
        { name: "Status", values: ["Available"] },
        { name: "Connections", values: [`${stats.connections}/${plan.connectionLimit}`] },
        { name: "PG Version", values: [stats.version] },
        { name: "Created", values: [view.addon.createdAt.toISOString().replace("T", " ").slice(0, 16)] },
        { name: "Data Size", values: [`${humanSize(stats.sizeBytes)} / ${humanSize(limitBytes)} (${((stats.sizeBytes / limitBytes) * 100).toFixed(2)}%)`] },
        { name: "Tables", values: [stats.tables === null ? "unknown (no connection left)" : String(stats.tables)] },
        { name: "Fork/Follow", values: ["Fork: Available (addons:create -- --fork); Follow: Unsupported"] },
        ...(view.addon.forkedFrom ? [{ name: "Forked From", values: [view.addon.forkedFrom] }] : []),
        { name: "Rollback", values: ["Unsupported"] },
      ],
    });
  })
  .get("/postgres/v0/databases/:addon/credentials", async (c) => {
    const view = await databaseOf(c);
    return c.json([credentialJson(await addonCredentials(c.var.db, view, c.env), 0, false)]);
  })
  .get("/postgres/v0/databases/:addon/credentials/:credential", async (c) => {
    const view = await databaseOf(c);
    if (c.req.param("credential") !== "default") throw new ApiError("not_found", "This database has only the default credential.", "credential");
    return c.json(credentialJson(await addonCredentials(c.var.db, view, c.env), 0, true));
  })
  .post("/postgres/v0/databases/:addon/credentials/:credential/credentials_rotation", async (c) => {
    const view = await databaseOf(c);
    if (c.req.param("credential") !== "default") throw new ApiError("not_found", "This database has only the default credential.", "credential");
    await rotateCredentials(requestContext(c, c.var.actor), view);
    return c.json({ message: `Rotated the default credential of ${view.addon.name}.` });
  })
  .post("/client/v11/databases/:addon/connection_reset", async (c) => {
    const view = await databaseOf(c);
    const ended = await endDatabaseSessions(requestContext(c, c.var.actor), view);
    return c.json({ message: `Ended ${ended} connection${ended === 1 ? "" : "s"} to ${view.addon.name}.` });
  })
  .put("/client/v11/databases/:addon/reset", jsonBody(resetBody), async (c) => {
    const view = await databaseOf(c);
    await resetDatabase(requestContext(c, c.var.actor), view, c.req.valid("json").extensions ?? []);
    return c.json({ message: `Reset ${view.addon.name}.` });
  })
  .post("/postgres/v0/databases/:addon/credentials_rotation", async (c) => {
    const view = await databaseOf(c);
    await rotateCredentials(requestContext(c, c.var.actor), view);
    return c.json({ message: `Rotated every credential of ${view.addon.name}.` });
  })
  // PGBackups: `pg:backups:capture`, `restore`, the list, `info`, `url`/`download`, `delete`, `cancel`.
  .post("/client/v11/databases/:addon/backups", async (c) => {
    const transfer = await captureBackup(requestContext(c, c.var.actor), await databaseOf(c));
    return c.json(transferJson(transfer, c.env.API_HOST), 201);
  })
  .post("/client/v11/databases/:addon/restores", jsonBody(restoreBody), async (c) => {
    const view = await databaseOf(c);
    const body = c.req.valid("json");
    const transfer = await restoreBackup(requestContext(c, c.var.actor), view, body.backup_url, body.extensions ?? []);
    return c.json(transferJson(transfer, c.env.API_HOST), 201);
  })
  .post("/client/v11/databases/:addon/transfers", jsonBody(copyBody), async (c) => {
    const transfer = await copyDatabase(requestContext(c, c.var.actor), await databaseOf(c), c.req.valid("json"));
    return c.json(transferJson(transfer, c.env.API_HOST), 201);
  })
  .get("/client/v11/apps/:app/transfers", async (c) => {
    const rows = await listTransfers(requestContext(c, c.var.actor), c.req.param("app"));
    return c.json(rows.map((t) => transferJson(t, c.env.API_HOST)));
  })
  .get("/client/v11/apps/:app/transfers/:transfer", async (c) => {
    const t = await getTransfer(requestContext(c, c.var.actor), c.req.param("app"), c.req.param("transfer"));
    return c.json(transferJson(t, c.env.API_HOST, c.req.query("verbose") === "true"));
  })
  .delete("/client/v11/apps/:app/transfers/:transfer", async (c) => {
    const t = await deleteBackup(requestContext(c, c.var.actor), c.req.param("app"), c.req.param("transfer"));
    return c.json(transferJson(t, c.env.API_HOST));
  })
  .post("/client/v11/apps/:app/transfers/:transfer/actions/public-url", async (c) => {
    const { url, expiresAt } = await backupDownloadUrl(requestContext(c, c.var.actor), c.req.param("app"), c.req.param("transfer"));
    return c.json({ url, expires_at: expiresAt.toISOString() });
  })
  .post("/client/v11/apps/:app/transfers/:transfer/actions/cancel", async (c) => {
    const t = await cancelTransfer(requestContext(c, c.var.actor), c.req.param("app"), c.req.param("transfer"));
    return c.json(transferJson(t, c.env.API_HOST));
  })
  // Daily backups: `pg:backups:schedule`, `schedules`, `unschedule`.
  .get("/client/v11/databases/:addon/transfer-schedules", async (c) => {
    const rows = await listSchedules(requestContext(c, c.var.actor), await databaseOf(c));
    return c.json(rows.map(scheduleJson));
  })
  .post("/client/v11/databases/:addon/transfer-schedules", jsonBody(scheduleBody), async (c) => {
    const row = await scheduleBackups(requestContext(c, c.var.actor), await databaseOf(c), c.req.valid("json"));
    return c.json(scheduleJson(row), 201);
  })
  .delete("/client/v11/databases/:addon/transfer-schedules/:schedule", async (c) => {
    const row = await unscheduleBackups(requestContext(c, c.var.actor), await databaseOf(c), c.req.param("schedule"));
    return c.json(scheduleJson(row));
  });

/**
 * A backup's download (`pg:backups:download` fetches it with no header at all, so the URL
 * carries a signed token naming the backup, good for DOWNLOAD_URL_TTL_S): the dump itself.
 */
export const backupDownloadRoutes = new Hono<AppEnv>().get("/client/v11/backups/:id/dump", database, async (c) => {
  const id = c.req.param("id");
  await verifyToken(c.env.COMMAND_SIGNING_KEY, c.req.query("token") ?? "", "backup-download", id);
  const object = await backupDump(c.var.db, c.env.BLOBS, id);
  return new Response(object.body, {
    headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size), "Content-Disposition": `attachment; filename="${id}.dump"` },
  });
});
