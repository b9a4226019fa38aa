import { fetch, type Headers } from "undici";
import { platform, tlsAgent } from "./api.ts";

/** One answer from the dashboard, redirects not followed. */
export interface PageResult {
  status: number;
  text: string;
  /** The `Location` of a redirect, as a path. */
  location: string | null;
  headers: Headers;
}

/** The CSRF token a page's forms carry. */
export function csrfOf(html: string): string | null {
  return /name="_csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? null;
}

/**
 * A browser without a browser, for route tests: keeps cookies, sends the `Origin` a
 * browser sends on form posts, and remembers the CSRF token of the last page it loaded.
 */
export class DashboardClient {
  readonly cookies = new Map<string, string>();
  /** The CSRF token of the last page fetched. */
  csrf: string | null = null;

  /** `headers` go on every request (e.g. a client address as Cloudflare reports it). */
  constructor(private readonly headers: Record<string, string> = {}) {}

  private cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  private remember(res: { headers: Headers }) {
    for (const line of res.headers.getSetCookie()) {
      const [pair = "", ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (gone) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1).trim());
    }
  }

  async request(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}): Promise<PageResult> {
    const headers: Record<string, string> = { Accept: "text/html", ...this.headers, ...init.headers };
    if (this.cookies.size) headers.Cookie = this.cookieHeader();
    const res = await fetch(platform().apiUrl + path, { method, headers, body: init.body, redirect: "manual", dispatcher: tlsAgent() });
    this.remember(res);
    const text = await res.text();
    const csrf = csrfOf(text);
    if (csrf) this.csrf = csrf;
    const location = res.headers.get("location");
    return { status: res.status, text, location: location ? location.replace(platform().apiUrl, "") : null, headers: res.headers };
  }

  get(path: string) {
    return this.request("GET", path);
  }

  /**
   * Posts a form as a browser would: our Origin and the current CSRF token, unless the
   * test overrides them (`null` leaves the field or header out).
   */
  post(path: string, fields: Record<string, string>, opts: { csrf?: string | null; origin?: string | null } = {}) {
    const body = new URLSearchParams(fields);
    const csrf = opts.csrf === undefined ? this.csrf : opts.csrf;
    if (csrf !== null) body.set("_csrf", csrf);
    const origin = opts.origin === undefined ? platform().apiUrl : opts.origin;
    const headers: Record<string, string> = { "Content-Type": "application/x-www-form-urlencoded" };
    if (origin !== null) headers.Origin = origin;
    return this.request("POST", path, { body: body.toString(), headers });
  }

  /** Signs in through the sign-in form; returns the form's answer (303 on success). */
  async signIn(email: string, password: string, next?: string): Promise<PageResult> {
    await this.get(next ? `/dashboard/login?next=${encodeURIComponent(next)}` : "/dashboard/login");
    return this.post("/dashboard/login", { email, password, ...(next ? { next } : {}) });
  }
}
