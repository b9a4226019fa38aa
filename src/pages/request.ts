import type { Context } from "hono";
import { clearCookie, FLASH_COOKIE, readCookie, writeCookie } from "../auth/browser-cookies.ts";
import type { Bindings, Variables } from "../env.ts";
import type { BrowserSession } from "../services/access/browser-sessions.ts";
import { ApiError } from "../errors.ts";

/** A one-shot message shown on the next page, after a form's redirect. */
export interface Flash {
  kind: "notice" | "error";
  text: string;
}

/** What the dashboard knows about each request on top of the API's variables. */
export interface DashboardVariables extends Variables {
  session: BrowserSession | null;
  /** The CSRF token every form of this page must send back. */
  csrf: string;
  flash: Flash | null;
}

/** The Hono environment of the dashboard's pages. */
export interface DashboardEnv {
  Bindings: Bindings;
  Variables: DashboardVariables;
}

/** One dashboard request and its answer (Hono's handle of both), as a page handler gets it. */
export type DashboardCall = Context<DashboardEnv>;

/** The dashboard's URL prefix; the Platform API owns `/apps` and friends at the root. */
export const BASE = "/dashboard";

/** A path inside the dashboard. */
export const href = (path: string) => `${BASE}${path}`;

/** An app's page (`tab` empty for the overview). */
export const appHref = (name: string, tab = "") => href(`/apps/${encodeURIComponent(name)}${tab ? `/${tab}` : ""}`);

/** Leaves a message for the next page. */
export async function setFlash(c: DashboardCall, flash: Flash): Promise<void> {
  await writeCookie(c, c.env.COMMAND_SIGNING_KEY, FLASH_COOKIE, JSON.stringify(flash), 60);
}

/** Takes (and clears) the message a previous request left. */
export async function takeFlash(c: DashboardCall): Promise<Flash | null> {
  const raw = await readCookie(c, c.env.COMMAND_SIGNING_KEY, FLASH_COOKIE);
  if (!raw) return null;
  clearCookie(c, FLASH_COOKIE);
  try {
    const parsed = JSON.parse(raw) as Flash;
    return (parsed.kind === "notice" || parsed.kind === "error") && typeof parsed.text === "string" ? parsed : null;
  } catch {
    return null;
  }
}

/** Post/redirect/get: a 303 to `to` carrying a message. */
export async function redirectWith(c: DashboardCall, to: string, flash: Flash): Promise<Response> {
  await setFlash(c, flash);
  return c.redirect(to, 303);
}

/**
 * A `next` target that stays inside the dashboard (an open redirect would let a link
 * send a freshly signed-in person anywhere).
 */
export function safeNext(next: unknown): string | null {
  if (typeof next !== "string" || !next.startsWith(`${BASE}/`) || next.startsWith("//") || /[\\\s]/.test(next)) return null;
  return next.length <= 512 ? next : null;
}

/** The signed-in session, or a redirect to the sign-in page that comes back here. */
export function sessionOrLogin(c: DashboardCall): { session: BrowserSession } | { redirect: Response } {
  const session = c.var.session;
  if (session) return { session };
  const here = new URL(c.req.url);
  const next = c.req.method === "GET" ? here.pathname + here.search : href("/apps");
  return { redirect: c.redirect(`${href("/login")}?next=${encodeURIComponent(next)}`, 303) };
}

/** What a form's change did: the notice to show on the page it came from, or on another (`to`). */
export type FormDone = string | { text: string; to: string };

/**
 * The one shape of the dashboard's forms (post, redirect, get): `find` the signed-in person
 * and what the form is about (or the redirect to sign in), make the change, and redirect to
 * `back` with its notice, or with the refusal's message when the change was refused (an
 * ApiError, which changed nothing).
 */
export function dashboardForm<T extends { session: BrowserSession }>(
  find: (c: DashboardCall) => Promise<T | { redirect: Response }> | T | { redirect: Response },
  back: (found: T) => string,
  change: (input: T & { c: DashboardCall }) => Promise<FormDone>,
) {
  return async (c: DashboardCall): Promise<Response> => {
    const found = await find(c);
    if ("redirect" in found) return found.redirect;
    const to = back(found);
    try {
      const done = await change({ ...found, c });
      return typeof done === "string" ? redirectWith(c, to, { kind: "notice", text: done }) : redirectWith(c, done.to, { kind: "notice", text: done.text });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return redirectWith(c, to, { kind: "error", text: err.message });
    }
  };
}

/** A form field as a trimmed string ("" when absent or not text). */
export async function field(c: DashboardCall, name: string): Promise<string> {
  const body = await c.req.parseBody();
  const value = body[name];
  return typeof value === "string" ? value.trim() : "";
}

/** A form field exactly as typed (passwords, config values). */
export async function rawField(c: DashboardCall, name: string): Promise<string> {
  const value = (await c.req.parseBody())[name];
  return typeof value === "string" ? value : "";
}
