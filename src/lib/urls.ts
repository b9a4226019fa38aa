import type { Bindings } from "../env.ts";

/** Where the platform and its apps are reached from outside; derived from the Worker's configuration. */
export interface PublicUrls {
  apiHost: string;
  appsDomain: string;
  portSuffix: string;
}

export function publicUrls(env: Pick<Bindings, "API_HOST" | "APPS_DOMAIN" | "PUBLIC_PORT_SUFFIX">): PublicUrls {
  return { apiHost: env.API_HOST, appsDomain: env.APPS_DOMAIN, portSuffix: env.PUBLIC_PORT_SUFFIX ?? "" };
}

export const webUrl = (u: PublicUrls, appName: string) => `https://${appName}.${u.appsDomain}${u.portSuffix}/`;
export const gitUrl = (u: PublicUrls, appName: string) => `https://${u.apiHost}/${appName}.git`;

/** Where the control plane serves the buildpack registry's lookups (the CLI's HEROKU_BUILDPACK_REGISTRY_URL). */
export const BUILDPACK_REGISTRY_PATH = "/buildpack-registry";
