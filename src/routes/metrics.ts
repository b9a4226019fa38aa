import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { appMetricsView, metricsQuery } from "../services/metrics/view.ts";

/**
 * `GET /apps/{app}/metrics?range=1h|24h|7d|30d&process_type=web`: the app's series as JSON,
 * a dynoplane extension (Heroku's metrics are not in its Platform API), for scripts and the
 * dashboard. Owners and collaborators may read them.
 */
export const metricsRoutes = new Hono<AppEnv>().get("/apps/:app/metrics", async (c) => {
  const query = metricsQuery(c.req.queries());
  const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
  return c.json(await appMetricsView(c.var.db, c.env, app, query));
});
