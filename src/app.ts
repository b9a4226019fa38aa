import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "./env.ts";
import { ApiError } from "./errors.ts";
import { acceptVersion3 } from "./middleware/accept.ts";
import { authenticate } from "./middleware/authenticate.ts";
import { database } from "./middleware/database.ts";
import { rateLimit } from "./middleware/rate-limit.ts";
import { requestId } from "./middleware/request-id.ts";
import { discardUnreadBody, limitBody } from "./middleware/body.ts";
import { dashboardRoutes } from "./pages/dashboard.tsx";
import { appHostRouter } from "./router/index.ts";
import type { WorkerCaches } from "./caches.ts";
import { accountRoutes } from "./routes/account.ts";
import { addonsRoutes } from "./routes/addons.ts";
import { backupDownloadRoutes, dataRoutes } from "./routes/data.ts";
import { appsRoutes } from "./routes/apps.ts";
import { blobsRoutes } from "./routes/blobs.ts";
import { buildOutputRoutes } from "./routes/build-output.ts";
import { buildpackInstallationsRoutes } from "./routes/buildpack-installations.ts";
import { buildpackRegistryRoutes } from "./routes/buildpack-registry.ts";
import { buildsRoutes } from "./routes/builds.ts";
import { configVarsRoutes } from "./routes/config-vars.ts";
import { domainsRoutes } from "./routes/domains.ts";
import { dynosRoutes } from "./routes/dynos.ts";
import { featuresRoutes } from "./routes/features.ts";
import { formationRoutes } from "./routes/formation.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { gitRoutes } from "./routes/git.ts";
import { internalBuildsRoutes } from "./routes/internal-builds.ts";
import { internalTransfersRoutes } from "./routes/internal-transfers.ts";
import { internalHostsRoutes } from "./routes/internal-hosts.ts";
import { logDrainsRoutes } from "./routes/log-drains.ts";
import { loginHandoffRoutes } from "./routes/login.ts";
import { logSessionsRoutes, logStreamRoutes } from "./routes/log-sessions.ts";
import { oauthLoginRoutes, oauthRoutes } from "./routes/oauth.ts";
import { releasesRoutes } from "./routes/releases.ts";
import { slugsRoutes } from "./routes/slugs.ts";
import { sourceBlobsRoutes, sourcesRoutes } from "./routes/sources.ts";
import { stacksRegionsRoutes } from "./routes/stacks-regions.ts";
import { webhooksRoutes } from "./routes/webhooks.ts";

/** Largest JSON body the Platform API reads. */
const API_BODY_LIMIT = 1024 * 1024;

/** Builds the control plane's HTTP app; no side effects, so tests can import it. */
export function createApp(caches: WorkerCaches) {
  const app = new Hono<AppEnv>();

  app.use(async (c, next) => {
    c.set("caches", caches);
    await next();
  });
  app.use(requestId);
  app.use(discardUnreadBody);
  // Requests for <app>.<APPS_DOMAIN> belong to the app, not to the API.
  app.use(appHostRouter);
  app.get("/health", (c) => c.json({ status: "ok" }));

  // Signed upload URLs take large bodies and no user token.
  app.use("/blobs/*", database);
  app.route("/", blobsRoutes);
  app.route("/", sourceBlobsRoutes);
  // Build output URLs carry their own signed token.
  app.route("/", buildOutputRoutes);
  // git push: large streamed bodies, Basic `heroku:<token>` auth, git's own error format.
  app.route("/", gitRoutes);
  // Host agents' build calls: slug uploads are large; host-secret auth.
  app.route("/", internalBuildsRoutes);
  // Postgres transfers: dumps up and down, as large as a database; host-secret auth.
  app.route("/", internalTransfersRoutes);
  // Backup downloads carry their own signed token; the CLI fetches them with no header at all.
  app.route("/", backupDownloadRoutes);
  // Log stream URLs carry their own signed token; the CLI reads them without its API token.
  app.route("/", logStreamRoutes);

  // The Platform API.
  app.use(acceptVersion3);
  app.use(limitBody(API_BODY_LIMIT, `Request bodies may be at most ${API_BODY_LIMIT / 1024} kB.`));

  app.use(database);
  app.route("/", oauthLoginRoutes);
  app.route("/", internalHostsRoutes);
  // `heroku login` in the browser, and the dashboard: their own credentials (poll token, session cookie).
  app.route("/", loginHandoffRoutes);
  app.route("/dashboard", dashboardRoutes);
  // The buildpack registry's lookups: a public catalog, as Heroku's registry is.
  app.route("/", buildpackRegistryRoutes);
  app.get("/", (c, next) => (/text\/html/.test(c.req.header("Accept") ?? "") ? c.redirect("/dashboard/apps") : next()));
  app.use(authenticate, rateLimit);
  app.route("/", accountRoutes);
  app.route("/", oauthRoutes);
  app.route("/", appsRoutes);
  app.route("/", configVarsRoutes);
  app.route("/", releasesRoutes);
  app.route("/", slugsRoutes);
  app.route("/", formationRoutes);
  app.route("/", metricsRoutes);
  app.route("/", dynosRoutes);
  app.route("/", buildsRoutes);
  app.route("/", addonsRoutes);
  app.route("/", featuresRoutes);
  app.route("/", dataRoutes);
  app.route("/", sourcesRoutes);
  app.route("/", buildpackInstallationsRoutes);
  app.route("/", logSessionsRoutes);
  app.route("/", logDrainsRoutes);
  app.route("/", stacksRegionsRoutes);
  app.route("/", domainsRoutes);
  app.route("/", webhooksRoutes);

  app.notFound((c) =>
    c.json(
      {
        id: "not_found",
        message:
          "The requested API endpoint was not found. Are you using the right HTTP verb (i.e. GET vs. POST), and did you specify your intended version with the Accept header?",
      },
      404,
    ),
  );
  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(err.toJSON(), err.status);
    if (err instanceof HTTPException && err.status < 500) {
      return c.json({ id: "bad_request", message: err.message || "Bad request." }, err.status);
    }
    console.error(JSON.stringify({ request_id: c.var.requestId, error: String(err), stack: (err as Error).stack }));
    return c.json({ id: "internal_server_error", message: "An internal error occurred. Please try again later." }, 500);
  });
  return app;
}
