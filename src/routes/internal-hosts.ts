import { Hono } from "hono";
import { forgetRoutes } from "../router/index.ts";
import { createMiddleware } from "hono/factory";
import { signingKeys } from "../auth/signing.ts";
import type { HostRow } from "../db/schema/hosts.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { commandConfig, withDb } from "../services/context.ts";
import { jsonBody } from "../lib/validate.ts";
import { credentials } from "../middleware/authenticate.ts";
import { CONTROL_PLANE_PATHS, HEARTBEAT_REQUEST, LOG_BATCH, METRICS_REPORT, SPOKEN_PROTOCOLS, type HeartbeatResponse } from "../protocol/host.ts";
import { recordDynoMetrics } from "../services/dyno-metrics.ts";
import { recordEvents } from "../services/metrics.ts";
import { advanceRollouts, desiredForHost, dynoOnHost } from "../services/dynos.ts";
import { pushDynoChanges } from "../services/host-commands.ts";
import { startWebhookDeliveries } from "../services/webhooks.ts";
import { authenticateHost, endOneOffDynos, FLEET_WATCH_NAME, HEARTBEAT_INTERVAL_MS, recordObservedDynos, touchHost } from "../services/hosts.ts";
import { appendLogLines } from "../services/logs.ts";
import { endVanishedOneOffs, finishReleasePhases, forwardReleaseOutput } from "../services/release-phase.ts";
import { getSlugById } from "../services/slugs.ts";

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
  .post(CONTROL_PLANE_PATHS.heartbeat, jsonBody(HEARTBEAT_REQUEST), async (c) => {
    const body = c.req.valid("json");
    const host = c.var.host;
    const protocol = body.agent?.protocol ?? 1;
    if (!SPOKEN_PROTOCOLS.includes(protocol)) {
      throw new ApiError(
        "conflict",
        `This control plane speaks host protocol ${SPOKEN_PROTOCOLS.join(", ")}, and this agent (${body.agent?.version ?? "unknown version"}) speaks protocol ${protocol}: run an agent release that speaks protocol ${SPOKEN_PROTOCOLS.at(-1)}, or upgrade the control plane first.`,
      );
    }
    await touchHost(c.var.db, host, {
      agentVersion: body.agent?.version,
      url: body.url,
      rendezvous: body.rendezvous,
      session: body.session,
      capacityMb: body.capacity_mb,
      droppedLogLines: body.dropped_log_lines,
    });
    const { changed, crashed, movesEnded } = await recordObservedDynos(c.var.db, host.id, body.dynos);
    forgetRoutes(changed);
    const after = (w: Promise<unknown>) => c.executionCtx.waitUntil(w);
    // A release rolling through these apps' dynos takes its next batch once the last one is up
    // (this host hears of its own in the answer below; other hosts are told at once).
    const rolled = changed.length ? await advanceRollouts(c.var.db, changed) : null;
    if (rolled?.start.length) after(withDb(c.env, (db) => pushDynoChanges(db, commandConfig(c.env), rolled)).catch(() => {}));
    for (const appId of changed) startWebhookDeliveries({ env: c.env, after }, appId);
    for (const d of crashed) {
      const status = d.exitCode === null ? "" : ` (exit status ${d.exitCode})`;
      recordEvents({ env: c.env, after }, d.appId, [{ t: d.at.getTime(), kind: "crash", dyno: d.name, message: `${d.name} crashed${status}` }]);
    }
    // A release phase's end decides its release, before the ended one-off dynos are forgotten.
    await finishReleasePhases(c.var.db, c.env, host.id, body.dynos);
    const restarted = !!body.session && !!host.agentSession && body.session !== host.agentSession;
    const vanished = await endOneOffDynos(c.var.db, host.id, body.dynos, restarted);
    if (vanished.length) await endVanishedOneOffs(c.var.db, c.env, vanished, restarted);
    // The fleet (silent hosts, unplaced dynos, drains) is the FleetWatch's alone, one writer
    // on its own schedule; a heartbeat only keeps it armed, and wakes it at once when this
    // host is new or back, since dynos may be waiting for room. (Through the binding only: the
    // Durable Object's module is workerd's, and routes load in Node too.)
    const watch = c.env.FLEET_WATCH.get(c.env.FLEET_WATCH.idFromName(FLEET_WATCH_NAME));
    // A drain's move that just ended lets the next one start now, not at the next check.
    c.executionCtx.waitUntil((host.state === "up" && !movesEnded ? watch.arm() : watch.converge()).catch(() => {}));
    const response: HeartbeatResponse = {
      host_id: host.id,
      command_key: (await signingKeys(c.env.COMMAND_SIGNING_KEY)).publicJwk as JsonWebKey,
      desired: await desiredForHost(c.var.db, host.id, commandConfig(c.env).bootTimeoutS),
      heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
    };
    return c.json(response);
  })
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
