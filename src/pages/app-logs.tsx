import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow } from "../db/schema/index.ts";
import { listFormation } from "../services/dynos/formation.ts";
import { createLogSession } from "../services/logs/sessions.ts";
import { formatLogLine } from "../logs/lines.ts";
import { logChannel } from "../services/logs/logs.ts";
import { appHref, href, type DashboardCall, type DashboardEnv } from "./request.ts";
import { appOrLogin } from "./app-support.tsx";
import { AppFrame, frameOf, type Frame } from "./layout.tsx";

/** Lines shown when the page opens (and replayed when the live view connects). */
const HISTORY_LINES = 100;
const SELECTOR_RE = /^[A-Za-z0-9_-]{1,30}(\.[A-Za-z0-9_-]{1,30})?$/;

interface Filters {
  /** A process type (`web`), a dyno (`web.1`) or `router`; undefined for all. */
  type?: string;
  source?: "app" | "heroku";
}

/** The filters a query string asks for; anything malformed means "all". */
function filtersOf(c: DashboardCall): Filters {
  const type = c.req.query("type") ?? "";
  const source = c.req.query("source");
  return { type: SELECTOR_RE.test(type) ? type : undefined, source: source === "app" || source === "heroku" ? source : undefined };
}

const query = (f: Filters) => new URLSearchParams({ ...(f.type ? { type: f.type } : {}), ...(f.source ? { source: f.source } : {}) }).toString();

/** A tail session for the signed-in person's app, through the same service as `heroku logs --tail`. */
async function streamUrl(c: DashboardCall, app: AppRow, accountId: string, f: Filters): Promise<string> {
  const session = await createLogSession(c.env, app.id, accountId, { lines: HISTORY_LINES, tail: true, dyno: f.type, source: f.source });
  return session.logplexUrl;
}

interface LogsProps {
  frame: Frame;
  app: AppRow;
  types: string[];
  filters: Filters;
  lines: string[];
  stream: string;
}

const LogsView: FC<LogsProps> = ({ frame, app, types, filters, lines, stream }) => (
  <AppFrame frame={frame} app={app.name} tab="logs">
    <h2>Logs</h2>
    <form method="get" action={appHref(app.name, "logs")} class="log-filters" aria-label="Filter logs">
      <div>
        <label for="log-type">Process type</label>
        <select id="log-type" name="type">
          <option value="">All processes</option>
          {[...types, "router", "api"].map((t) => (
            <option value={t} selected={filters.type === t}>
              {t}
            </option>
          ))}
        </select>
      </div>
      <div>
        <label for="log-source">Source</label>
        <select id="log-source" name="source">
          <option value="">All sources</option>
          <option value="app" selected={filters.source === "app"}>
            app
          </option>
          <option value="heroku" selected={filters.source === "heroku"}>
            heroku
          </option>
        </select>
      </div>
      <button type="submit" class="secondary">
        Apply filters
      </button>
    </form>
    <p class="live-status" id="live-status" role="status" aria-live="polite">
      Showing the latest {HISTORY_LINES} lines. The live view needs JavaScript; reload for newer lines.
    </p>
    <pre
      class="log"
      id="log"
      role="log"
      tabindex={0}
      aria-label="Log output"
      data-stream={stream}
      data-renew={`${appHref(app.name, "logs/session")}?${query(filters)}`}
    >
      {lines.join("\n")}
    </pre>
    <script src={href("/assets/logs.js")} defer></script>
  </AppFrame>
);

/** The live log view: history rendered on the server, then a live stream for browsers with JavaScript. */
export const logsPages = new Hono<DashboardEnv>()
  .get("/apps/:name/logs", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app, session } = found;
    const filters = filtersOf(c);
    const history = await logChannel(c.env, app.id).recent({ limit: HISTORY_LINES, dyno: filters.type, source: filters.source });
    const types = (await listFormation(c.var.db, app.id)).map((f) => f.type);
    c.header("Cache-Control", "no-store");
    return c.html(
      <LogsView
        frame={frameOf(c, `${app.name} · Logs`)}
        app={app}
        types={types}
        filters={filters}
        lines={history.map(formatLogLine)}
        stream={await streamUrl(c, app, session.actor.accountId, filters)}
      />,
    );
  })
  .get("/apps/:name/logs/session", async (c) => {
    // A fresh stream URL once the page's one expires; the page reads it with its cookie.
    const found = await appOrLogin(c);
    if ("redirect" in found) return c.json({ error: "signed out" }, 401);
    c.header("Cache-Control", "no-store");
    return c.json({ url: await streamUrl(c, found.app, found.session.actor.accountId, filtersOf(c)) });
  });
