/** Keeps wrangler from calling home; applied to this process so every child inherits it. */
export function applyOfflineEnv(env: NodeJS.ProcessEnv = process.env): void {
  env.WRANGLER_SEND_METRICS = "false";
  env.WRANGLER_SEND_ERROR_REPORTS = "false";
  env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  env.WRANGLER_HIDE_BANNER = "true";
}
