import type { Database } from "../db/client.ts";
import type { WebDyno } from "./forward.ts";

/** Where an app's requests go: its web dynos and their hosts (how long it holds is the cache's lifetime). */
export interface Route {
  appId: string;
  dynos: WebDyno[];
}

/** What the router knows of a keep-alive ping, and what it hands back. */
export interface InternalPing {
  /** The database connection of the pinger's run. */
  db: Database;
  /** The app's route, read for the pinger's whole share at once (null: route it as any request). */
  route: Route | null;
  /** The router's `heroku[router]` lines for it, written by the pinger with its own. */
  routerLines: string[];
}

/**
 * Requests the keep-alive pinger routes in-process. Only code inside the Worker holds
 * these Request objects: nothing a visitor sends can be taken for a ping.
 */
export const internalPings = new WeakMap<Request, InternalPing>();
