import type { LogSession } from "../services/logs/sessions.ts";
import { isoTime } from "./common.ts";

/** Heroku's log-session shape; a session is never updated, so both times are its creation. */
export function toLogSessionJson(s: LogSession) {
  return { id: s.id, logplex_url: s.logplexUrl, created_at: isoTime(s.createdAt), updated_at: isoTime(s.createdAt) };
}
