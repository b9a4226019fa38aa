/**
 * The control plane's signed tokens: who issues them and what each may be used for. A token
 * is good for one purpose only; a verifier that checks the purpose cannot be handed a token
 * meant for something else (a route token as a command, an upload URL as a log session).
 */
export const TOKEN_ISSUER = "dynoplane";

export const TOKEN_PURPOSES = [
  "command",
  "route",
  "slug-upload",
  "log-session",
  "cli-login",
  "source-upload",
  "source-download",
  "build-output",
  "rendezvous",
  "backup-download",
] as const;
export type TokenPurpose = (typeof TOKEN_PURPOSES)[number];
