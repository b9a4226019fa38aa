import fs from "node:fs/promises";
import path from "node:path";
import { BUILDPACK_REGISTRY_PATH } from "../lib/urls.ts";
import type { LocalTls } from "./tls.ts";

/** Apps answer at https://<app>.apps.localhost:<port>/ locally (`*.localhost` itself cannot carry a wildcard certificate). */
export const APPS_DOMAIN = "apps.localhost";

/**
 * The environment that points the stock `heroku` CLI and git at a platform on `host:port`.
 * With `cacheDir`, the CLI keeps its cache there (HEROKU_CACHE_DIR), one for this platform.
 */
export function cliEnvironment(hostPort: string, tls: Pick<LocalTls, "caPath" | "bundlePath">, cacheDir?: string): Record<string, string> {
  const url = `https://${hostPort}`;
  return {
    ...(cacheDir ? { HEROKU_CACHE_DIR: cacheDir } : {}),
    HEROKU_HOST: url,
    HEROKU_LOGIN_HOST: url,
    HEROKU_GIT_HOST: hostPort,
    HEROKU_DATA_HOST: hostPort.replace(/:\d+$/, ""),
    HEROKU_PARTICLEBOARD_URL: url,
    HEROKU_BUILDPACK_REGISTRY_URL: `${url}${BUILDPACK_REGISTRY_PATH}`,
    HEROKU_NETRC_WRITE: "true",
    HEROKU_SKIP_NEW_VERSION_CHECK: "true",
    HEROKU_DISABLE_AUTOUPDATE: "1",
    DISABLE_TELEMETRY: "true",
    NODE_EXTRA_CA_CERTS: tls.caPath,
    GIT_SSL_CAINFO: tls.bundlePath,
  };
}

/** `export NAME=value` lines, quoted for sh. */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}=${/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`}`)
    .join("\n");
}

/**
 * The `heroku` CLI's cache for a platform, made ready: the CLI warns once per cache that
 * "Our terms of service have changed" (Heroku's own terms, which do not govern this
 * platform) unless its `terms-of-service` marker is there, so the marker is.
 */
export async function prepareCliCache(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "terms-of-service"), "", { flag: "a" });
}
