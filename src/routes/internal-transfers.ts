import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { PgTransferRow } from "../db/schema/index.ts";
import { ApiError } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { limitBody } from "../middleware/body.ts";
import { database } from "../middleware/database.ts";
import { CONTROL_PLANE_PATHS } from "../protocol/host.ts";
import { TRANSFER_RESULT } from "../protocol/transfer.ts";
import { finishTransfer, restoreDump } from "../services/addons/backups.ts";
import { assignedTransfer, storeDumpPart } from "../services/addons/transfers.ts";
import { hostAuth, type HostEnv } from "./internal-hosts.ts";

type TransferEnv = HostEnv & { Variables: HostEnv["Variables"] & { transfer: PgTransferRow } };

/** A transfer exists for a host only if it was given to that host. */
const assigned = createMiddleware<TransferEnv>(async (c, next) => {
  c.set("transfer", await assignedTransfer(c.var.db, c.req.param("id") ?? "", c.var.host.id));
  await next();
});

/** A result carries at most 2,000 log lines of 4 kB. */
const limitJson = limitBody(10 * 1024 * 1024, "Request body too large.");

/**
 * The control plane's side of Postgres transfers (src/protocol/transfer.ts): the host a
 * backup or restore was given to uploads or fetches its dump and reports how it ended.
 */
export const internalTransfersRoutes = new Hono<TransferEnv>()
  .use(`${CONTROL_PLANE_PATHS.transfer}/*`, database, hostAuth, assigned)
  .put(`${CONTROL_PLANE_PATHS.transfer}/dump/parts/:n`, async (c) => {
    const length = Number(c.req.header("Content-Length"));
    if (!Number.isInteger(length) || length <= 0) throw new ApiError("bad_request", "A Content-Length is required.");
    const n = Number(c.req.param("n"));
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new ApiError("bad_request", "Parts are numbered from 1 to 10000.");
    await storeDumpPart(c.var.db, c.env.BLOBS, c.var.transfer, n, c.req.raw.body!, length);
    return c.body(null, 204);
  })
  .get(`${CONTROL_PLANE_PATHS.transfer}/dump`, async (c) => {
    const object = await restoreDump(c.var.db, c.env.BLOBS, c.var.transfer);
    return new Response(object.body, { headers: { "Content-Type": "application/octet-stream", "Content-Length": String(object.size) } });
  })
  .post(`${CONTROL_PLANE_PATHS.transfer}/result`, limitJson, jsonBody(TRANSFER_RESULT), async (c) => {
    await finishTransfer(c.var.db, c.env, c.var.transfer, c.req.valid("json"));
    return c.body(null, 204);
  });
