import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { BUILDPACK_REGISTRY_PATH } from "../lib/urls.ts";
import { BUILT_IN_BUILDPACKS } from "../services/builds/buildpacks.ts";

const DESCRIPTIONS: Record<string, string> = {
  "heroku/python": "Python: Pipfile.lock, Pipfile, requirements.txt, setup.py or pyproject.toml",
  "heroku/nodejs": "Node.js: package.json",
  "heroku/procfile": "Procfile: an app that needs no build",
};

/** A stable id per built-in buildpack, so the registry's `{id}` is a real UUID. */
const IDS: Record<string, string> = {
  "heroku/python": "2f1f8a0e-6c54-4a5e-9d3b-3c3f8f6f0a01",
  "heroku/nodejs": "2f1f8a0e-6c54-4a5e-9d3b-3c3f8f6f0a02",
  "heroku/procfile": "2f1f8a0e-6c54-4a5e-9d3b-3c3f8f6f0a03",
};

/**
 * The buildpack registry's lookups (`GET /buildpacks/{namespace%2Fname}`), which
 * `heroku buildpacks:add heroku/python` and `buildpacks:set` make before they install a
 * buildpack by name. Heroku serves its registry on a host of its own; here it names the
 * platform's built-in buildpacks, and `blob_url` is what the app's installation then holds
 * (the agents carry them). A catalog, the same for everyone: no token is asked.
 */
export const buildpackRegistryRoutes = new Hono<AppEnv>().get(`${BUILDPACK_REGISTRY_PATH}/buildpacks/:buildpack`, (c) => {
  const name = c.req.param("buildpack").toLowerCase();
  if (!BUILT_IN_BUILDPACKS.includes(name)) {
    throw new ApiError(
      "not_found",
      `${c.req.param("buildpack").slice(0, 100)} is not in the buildpack registry: this platform has ${BUILT_IN_BUILDPACKS.join(", ")}.`,
      "buildpack",
    );
  }
  const [namespace, short] = name.split("/") as [string, string];
  return c.json({
    id: IDS[name],
    namespace,
    name: short,
    description: DESCRIPTIONS[name],
    category: "languages",
    blob_url: name,
    support: { method: "other", url: null },
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
  });
});
