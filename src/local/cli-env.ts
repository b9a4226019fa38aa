import { BUILDPACK_REGISTRY_PATH } from "../lib/urls.ts";
import type { LocalTls } from "./tls.ts";

/** Apps answer at https://<app>.apps.localhost:<port>/ locally (`*.localhost` itself cannot carry a wildcard certificate). */
export const APPS_DOMAIN = "apps.localhost";

/** The environment that points the stock `heroku` CLI and git at a platform on `host:port`. */
export function cliEnvironment(hostPort: string, tls: Pick<LocalTls, "caPath" | "bundlePath">): Record<string, string> {
  const url = `https://${hostPort}`;
  return {
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
