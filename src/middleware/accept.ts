import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";

/**
 * Heroku's content negotiation: an `Accept` naming Heroku's media type must ask for
 * version 3 (variants such as `3.sdk` and `3.account-quotas` are version 3 too).
 * Other Accept values (`*\/*`, `application/json`, none) get version 3.
 */
export const acceptVersion3 = createMiddleware<AppEnv>(async (c, next) => {
  const accept = c.req.header("Accept") ?? "";
  if (/application\/vnd\.heroku\+json/i.test(accept)) {
    const version = /version=([\w.-]+)/i.exec(accept)?.[1];
    if (!version || !/^3(\.[\w-]+)?$/.test(version)) {
      throw new ApiError(
        "missing_version",
        "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
      );
    }
  }
  await next();
});
