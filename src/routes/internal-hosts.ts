import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import type { HostRow } from "../db/schema/hosts.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { requestContext } from "../services/context.ts";
import { jsonBody } from "../lib/validate.ts";
import { credentials } from "../middleware/authenticate.ts";
import { CONTROL_PLANE_PATHS, HEARTBEAT_REQUEST, LOG_BATCH, METRICS_REPORT } from "../protocol/host.ts";
import { recordDynoMetrics } from "../services/metrics/dynos.ts";
import { dynoOnHost } from "../services/dynos/dynos.ts";
import { receiveHeartbeat } from "../services/fleet/heartbeat.ts";
import { authenticateHost } from "../services/fleet/hosts.ts";
import { appendLogLines } from "../services/logs/logs.ts";
import { forwardReleaseOutput } from "../services/builds/release-phase.ts";
import { getSlugById } from "../services/apps/slugs.ts";
/** The environment of routes a host agent calls: the authenticated host is `c.var.host`. */
export type HostEnv = AppEnv & { Variables: AppEnv["Variables"] & { host: HostRow } };

/** Host agents authenticate with their secret (stored hashed), never with a user token. */
export const hostAuth = createMiddleware<HostEnv>(async (c, next) => {
  const creds = credentials(c);
  if (!creds) throw new ApiError("unauthorized", "Invalid host credentials.");
  c.set("host", await authenticateHost(c.var.db, creds.secret));
  await next();
});

/** The control plane's side of the host-agent protocol (src/protocol/host.ts). */
export const internalHostsRoutes = new Hono<HostEnv>()
  .use(CONTROL_PLANE_PATHS.all, hostAuth)
  .post(CONTROL_PLANE_PATHS.heartbeat, jsonBody(HEARTBEAT_REQUEST), async (c) =>
    c.json(await receiveHeartbeat(requestContext(c, null), c.var.caches.router, c.var.host, c.req.valid("json"))),
  )
  .post(CONTROL_PLANE_PATHS.metrics, jsonBody(METRICS_REPORT), async (c) => {
    await recordDynoMetrics({ db: c.var.db, env: c.env }, c.var.host.id, c.req.valid("json").dynos);
    return c.body(null, 204);
  })
  .post(CONTROL_PLANE_PATHS.logs, jsonBody(LOG_BATCH), async (c) => {
    const { lines } = c.req.valid("json");
    await appendLogLines(c.env, lines);
    await forwardReleaseOutput(c.var.db, c.env, lines);
    return c.body(null, 204);
  })
  .get(CONTROL_PLANE_PATHS.slug, async (c) => {
    const slug = await getSlugById(c.var.db, c.req.param("id"));
    // A host may fetch only slugs of apps it runs dynos for.
    if (!slug || !(await dynoOnHost(c.var.db, c.var.host.id, slug.appId))) throw new ApiError("not_found", "Couldn't find that slug.", "slug");
    const object = await c.env.BLOBS.get(slug.blobKey);
    if (!object) throw new ApiError("not_found", "That slug has no stored tarball.", "slug");
    return new Response(object.body, { headers: { "Content-Type": "application/gzip", "Content-Length": String(object.size) } });
  });
