import { Hono } from "hono";
import type { FC } from "hono/jsx";
import type { AppRow } from "../db/schema/index.ts";
import type { RequestPoint } from "../metrics/series.ts";
import { appMetricsView, type EcoView, type MetricsView, metricsQuery } from "../services/metrics/view.ts";
import { appOrLogin } from "./app-support.tsx";
import { type ChartLine, type ChartMarker, LineChart, MARKER_COLORS, StackedBars, type TimeAxis } from "./charts.tsx";
import { appHref, type DashboardEnv, href } from "./request.ts";
import { AppFrame, type Frame, frameOf } from "./layout.tsx";

/** Ranges the tab offers (the API has 30 days too). */
const SHOWN_RANGES = ["1h", "24h", "7d"] as const;
const DYNO_COLORS = ["#5a3d99", "#2f6fb3", "#1e6b3a", "#8a5300", "#b3261e", "#0f7c80", "#7d3c98", "#545b6e"];
const STATUS_COLORS: Record<string, string> = { "2xx": "#1e6b3a", "3xx": "#2f6fb3", "4xx": "#8a5300", "5xx": "#b3261e" };

const ms = (v: number | null) => (v === null ? "–" : `${v} ms`);
const utc = (iso: string) => `${iso.slice(0, 16).replace("T", " ")} UTC`;

const Summary: FC<{ totals: RequestPoint | undefined; resolution: number }> = ({ totals, resolution }) => {
  const errors = Object.entries(totals?.errors ?? {});
  return (
    <dl class="facts metrics-summary">
      <div class="fact">
        <dt>Requests</dt>
        <dd data-metric="requests">{totals?.requests ?? 0}</dd>
      </div>
      {(["2xx", "3xx", "4xx", "5xx"] as const).map((k) => (
        <div class="fact">
          <dt>{k}</dt>
          <dd data-metric={k}>{totals?.status[k] ?? 0}</dd>
        </div>
      ))}
      <div class="fact">
        <dt>Router errors</dt>
        <dd data-metric="errors">{errors.length ? errors.map(([code, n]) => `${code} × ${n}`).join(", ") : "none"}</dd>
      </div>
      <div class="fact">
        <dt>Response time p50 / p95 / p99 / max</dt>
        <dd data-metric="latency">
          {ms(totals?.p50_ms ?? null)} / {ms(totals?.p95_ms ?? null)} / {ms(totals?.p99_ms ?? null)} / {ms(totals?.max_ms ?? null)}
        </dd>
      </div>
      <div class="fact">
        <dt>Resolution</dt>
        <dd>{resolution >= 3600 ? `${resolution / 3600} hour` : `${resolution / 60} minutes`}</dd>
      </div>
    </dl>
  );
};

/** The account's eco hours this month: used, the projections, against the pool. */
const EcoChart: FC<{ eco: EcoView }> = ({ eco }) => {
  const bars: Array<[string, number, string]> = [
    ["Used so far", eco.used_hours, "#5a3d99"],
    ["Projected with keep-alive as planned", eco.projected_hours.with_keep_alive, "#2f6fb3"],
    ["Projected if pinged around the clock", eco.projected_hours.round_the_clock, "#8a5300"],
    ["Projected without keep-alive", eco.projected_hours.without_keep_alive, "#7d8597"],
  ];
  const max = Math.max(eco.pool_hours, ...bars.map((b) => b[1])) * 1.05 || 1;
  const W = 720;
  const LABEL = 270;
  const px = (h: number) => (h / max) * (W - LABEL - 70);
  return (
    <figure class="chart" id="chart-eco">
      <figcaption>Eco dyno hours, {eco.month} (the owner's pool, shared by all their eco apps)</figcaption>
      <svg viewBox={`0 0 ${W} ${bars.length * 28 + 24}`} role="img" aria-label="Eco dyno hours used and projected against the pool">
        {bars.map(([label, hours, color], i) => (
          <g data-bar={label}>
            <text x={LABEL - 8} y={i * 28 + 18} text-anchor="end" font-size="12" fill="#1d2130">
              {label}
            </text>
            <rect x={LABEL} y={i * 28 + 6} width={Math.max(1, px(hours)).toFixed(1)} height="16" fill={color} />
            <text x={LABEL + px(hours) + 6} y={i * 28 + 18} font-size="12" fill="#1d2130">
              {hours} h
            </text>
          </g>
        ))}
        <line
          x1={LABEL + px(eco.pool_hours)}
          x2={LABEL + px(eco.pool_hours)}
          y1="2"
          y2={bars.length * 28 + 6}
          stroke="#b3261e"
          stroke-width="2"
          stroke-dasharray="5 3"
        />
        <text x={LABEL + px(eco.pool_hours)} y={bars.length * 28 + 20} text-anchor="middle" font-size="12" fill="#b3261e">
          pool {eco.pool_hours} h
        </text>
      </svg>
      {eco.exhausted_until ? <p class="flash flash-error">The pool is used up: eco dynos sleep until {utc(eco.exhausted_until)}.</p> : null}
    </figure>
  );
};

const MetricsCharts: FC<{ view: MetricsView }> = ({ view }) => {
  const to = Date.parse(view.to);
  const resolutionMs = view.resolution_s * 1000;
  const types = view.process_type ? [view.process_type] : Object.keys(view.requests);
  const reqType = types.find((t) => view.requests[t]) ?? "web";
  const points = view.requests[reqType] ?? [];
  const anyDyno = Object.values(view.dynos)[0];
  const times = (points.length ? points : (anyDyno?.points ?? [])).map((p) => Date.parse(p.t));
  const markers: ChartMarker[] = view.events.map((e) => ({ t: Date.parse(e.t), kind: e.kind, label: e.message }));
  const axis: TimeAxis = { times, to, resolutionMs, markers };
  const dynoNames = Object.keys(view.dynos);
  const quota = Math.max(0, ...Object.values(view.dynos).flatMap((d) => d.points.map((p) => p.memory_quota_mb ?? 0)));
  const memoryLines: ChartLine[] = dynoNames.map((name, i) => ({
    name: `${name} RSS`,
    values: view.dynos[name]!.points.map((p) => p.memory_rss_mb),
    color: DYNO_COLORS[i % DYNO_COLORS.length]!,
  }));
  if (quota) memoryLines.push({ name: `quota (${quota} MB)`, values: times.map(() => quota), color: "#b3261e", dashed: true });
  const latency: ChartLine[] = [
    { name: "p50", values: points.map((p) => p.p50_ms), color: "#1e6b3a" },
    { name: "p95", values: points.map((p) => p.p95_ms), color: "#8a5300" },
    { name: "p99", values: points.map((p) => p.p99_ms), color: "#b3261e" },
  ];
  const per = view.resolution_s >= 3600 ? "hour" : `${view.resolution_s / 60} min`;
  return (
    <div id="metrics-live">
      <p class="hint">
        {utc(view.from)} to {utc(view.to)}. Updated every 30 seconds while this page is open.
      </p>
      <Summary totals={view.totals[reqType]} resolution={view.resolution_s} />
      {times.length ? (
        <>
          <LineChart id="chart-response-time" title={`Response time (${reqType})`} unit="ms" {...axis} lines={latency} />
          <StackedBars
            id="chart-throughput"
            title={`Throughput by status (${reqType}), requests per ${per}`}
            unit="requests"
            {...axis}
            stacks={(["2xx", "3xx", "4xx", "5xx"] as const).map((k) => ({ name: k, values: points.map((p) => p.status[k]), color: STATUS_COLORS[k]! }))}
          />
          <LineChart id="chart-memory" title="Memory per dyno (mean RSS)" unit="MB" {...axis} lines={memoryLines} floorMax={quota} />
          <LineChart
            id="chart-load"
            title="Load average (1 min) per dyno"
            unit="load"
            {...axis}
            lines={dynoNames.map((name, i) => ({
              name,
              values: view.dynos[name]!.points.map((p) => p.load_avg_1m),
              color: DYNO_COLORS[i % DYNO_COLORS.length]!,
            }))}
          />
        </>
      ) : (
        <p>No requests or dyno samples in this range yet.</p>
      )}
      {view.eco ? <EcoChart eco={view.eco} /> : null}
      <h3>Events</h3>
      {view.events.length ? (
        <div class="table-wrap">
          <table id="events-table">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Event</th>
                <th scope="col">What</th>
              </tr>
            </thead>
            <tbody>
              {[...view.events].reverse().map((e) => (
                <tr data-kind={e.kind}>
                  <td>{utc(e.t)}</td>
                  <td>
                    <span class="event-kind" data-color={MARKER_COLORS[e.kind]}>
                      {e.kind}
                    </span>
                  </td>
                  <td>{e.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No deploys, restarts, crashes or other events in this range.</p>
      )}
      <details class="spaced">
        <summary>Table view of the charts</summary>
        <div class="table-wrap">
          <table id="requests-table">
            <caption class="muted">Requests ({reqType}) per bucket with traffic</caption>
            <thead>
              <tr>
                <th scope="col">Bucket (UTC)</th>
                <th scope="col">Requests</th>
                <th scope="col">2xx</th>
                <th scope="col">3xx</th>
                <th scope="col">4xx</th>
                <th scope="col">5xx</th>
                <th scope="col">Router errors</th>
                <th scope="col">p50 ms</th>
                <th scope="col">p95 ms</th>
                <th scope="col">p99 ms</th>
                <th scope="col">max ms</th>
              </tr>
            </thead>
            <tbody>
              {points
                .filter((p) => p.requests)
                .map((p) => (
                  <tr data-t={p.t}>
                    <td>{utc(p.t)}</td>
                    <td>{p.requests}</td>
                    <td>{p.status["2xx"]}</td>
                    <td>{p.status["3xx"]}</td>
                    <td>{p.status["4xx"]}</td>
                    <td>{p.status["5xx"]}</td>
                    <td>
                      {Object.entries(p.errors)
                        .map(([c, n]) => `${c} × ${n}`)
                        .join(", ")}
                    </td>
                    <td>{p.p50_ms}</td>
                    <td>{p.p95_ms}</td>
                    <td>{p.p99_ms}</td>
                    <td>{p.max_ms}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
        <div class="table-wrap">
          <table id="memory-table">
            <caption class="muted">Dynos per bucket with samples</caption>
            <thead>
              <tr>
                <th scope="col">Bucket (UTC)</th>
                <th scope="col">Dyno</th>
                <th scope="col">RSS MB (mean)</th>
                <th scope="col">RSS MB (max)</th>
                <th scope="col">Swap MB</th>
                <th scope="col">Quota MB</th>
                <th scope="col">Load (1 min)</th>
                <th scope="col">Restarts</th>
              </tr>
            </thead>
            <tbody>
              {dynoNames.flatMap((name) =>
                view.dynos[name]!.points.filter((p) => p.memory_rss_mb !== null || p.restarts).map((p) => (
                  <tr data-dyno={name} data-t={p.t}>
                    <td>{utc(p.t)}</td>
                    <td>{name}</td>
                    <td>{p.memory_rss_mb ?? "–"}</td>
                    <td>{p.memory_rss_max_mb ?? "–"}</td>
                    <td>{p.memory_swap_mb ?? "–"}</td>
                    <td>{p.memory_quota_mb ?? "–"}</td>
                    <td>{p.load_avg_1m ?? "–"}</td>
                    <td>{p.restarts}</td>
                  </tr>
                )),
              )}
            </tbody>
          </table>
        </div>
      </details>
    </div>
  );
};

const MetricsPage: FC<{ frame: Frame; app: AppRow; view: MetricsView }> = ({ frame, app, view }) => {
  const link = (range: string, type: string | null) =>
    `${appHref(app.name, "metrics")}?range=${range}${type ? `&process_type=${encodeURIComponent(type)}` : ""}`;
  return (
    <AppFrame frame={frame} app={app.name} tab="metrics">
      <h2>Metrics</h2>
      <nav class="chips" aria-label="Range">
        {SHOWN_RANGES.map((r) => (
          <a href={link(r, view.process_type)} aria-current={r === view.range ? "page" : undefined}>
            {r === "1h" ? "Past hour" : r === "24h" ? "Past 24 hours" : "Past 7 days"}
          </a>
        ))}
      </nav>
      {view.process_types.length > 1 || view.process_type ? (
        <nav class="chips" aria-label="Process type">
          <a href={link(view.range, null)} aria-current={view.process_type ? undefined : "page"}>
            All
          </a>
          {view.process_types.map((t) => (
            <a href={link(view.range, t)} aria-current={t === view.process_type ? "page" : undefined}>
              {t}
            </a>
          ))}
        </nav>
      ) : null}
      <MetricsCharts view={view} />
      <p class="hint">
        The same numbers as JSON:{" "}
        <code>
          GET /apps/{app.name}/metrics?range={view.range}
        </code>
        . Per-dyno samples in the app's log: <code>heroku labs:enable log-runtime-metrics -a {app.name}</code>.
      </p>
      <script src={href("/assets/metrics.js")} defer></script>
    </AppFrame>
  );
};

/** The Metrics tab: the app's charts for a range, drawn on the server. */
export const metricsPages = new Hono<DashboardEnv>().get("/apps/:name/metrics", async (c) => {
  const found = await appOrLogin(c);
  if ("redirect" in found) return found.redirect;
  const { app } = found;
  const query = metricsQuery(c.req.queries());
  const view = await appMetricsView(c.var.db, c.env, app, query);
  return c.html(<MetricsPage frame={frameOf(c, `${app.name} · Metrics`)} app={app} view={view} />);
});

/** Refreshes the charts every 30 s while the page is open (the page reads the same without it). */
export const METRICS_SCRIPT = `
(() => {
  "use strict";
  const live = document.getElementById("metrics-live");
  if (!live || !window.fetch || !window.DOMParser) return;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const res = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok) return;
      const next = new DOMParser().parseFromString(await res.text(), "text/html").getElementById("metrics-live");
      const open = live.querySelector("details")?.open;
      if (next) {
        live.replaceChildren(...next.childNodes);
        const details = live.querySelector("details");
        if (details && open) details.open = true;
      }
    } catch {}
  }, 30000);
})();
`;
