/**
 * Heroku's rule for process type names (Procfile, `bin/release`, the Slug API): letters,
 * digits, `_` and `-`, at most MAX_PROCESS_TYPE_LENGTH of them.
 */
export const MAX_PROCESS_TYPE_LENGTH = 30;
export const PROCESS_TYPE_RE = /^[A-Za-z0-9_-]{1,30}$/;

/** Whether `type` is a valid process type name. */
export function isProcessType(type: string): boolean {
  return PROCESS_TYPE_RE.test(type);
}
