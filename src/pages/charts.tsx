import type { FC } from "hono/jsx";

/**
 * Charts drawn on the server as SVG (no script needed to read them): a time axis, a value
 * axis from zero, lines or stacked bars, and event markers. Colour is never the only signal:
 * every series is named in the legend, and the page has a table of the same numbers.
 */

export interface ChartLine {
  name: string;
  /** One value per time (null: no data, the line breaks). */
  values: Array<number | null>;
  color: string;
  dashed?: boolean;
}

export interface ChartMarker {
  t: number;
  kind: string;
  label: string;
}

interface Frame {
  times: number[];
  from: number;
  to: number;
  max: number;
}

const W = 720;
const H = 200;
const LEFT = 56;
const RIGHT = 12;
const TOP = 12;
const BOTTOM = 28;

/** Colours of event markers, by kind. */
export const MARKER_COLORS: Record<string, string> = {
  deploy: "#5a3d99",
  rollback: "#8a5300",
  config: "#2f6fb3",
  release: "#5a3d99",
  scale: "#1e6b3a",
  restart: "#545b6e",
  crash: "#b3261e",
  error: "#b3261e",
  sleep: "#7d8597",
  wake: "#1e6b3a",
  ping: "#a3aab8",
};

/** A ceiling for the value axis: 1, 2 or 5 times a power of ten, at least `max`. */
export function niceCeiling(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

const x = (f: Frame, t: number) => LEFT + ((t - f.from) / Math.max(1, f.to - f.from)) * (W - LEFT - RIGHT);
const y = (f: Frame, v: number) => TOP + (1 - v / f.max) * (H - TOP - BOTTOM);

function timeLabel(t: number, spanMs: number): string {
  const iso = new Date(t).toISOString();
  return spanMs > 2 * 86_400_000 ? iso.slice(5, 10) : iso.slice(11, 16);
}

const fmt = (v: number) => (v >= 100 ? String(Math.round(v)) : String(Math.round(v * 100) / 100));

const Axes: FC<{ frame: Frame; unit: string }> = ({ frame, unit }) => {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((k) => k * frame.max);
  const span = frame.to - frame.from;
  const stamps = [0, 0.25, 0.5, 0.75, 1].map((k) => frame.from + k * span);
  return (
    <g class="axes">
      {ticks.map((v) => (
        <g>
          <line x1={LEFT} x2={W - RIGHT} y1={y(frame, v)} y2={y(frame, v)} stroke="#d5d9e2" stroke-width="1" />
          <text x={LEFT - 6} y={y(frame, v) + 4} text-anchor="end" font-size="11" fill="#545b6e">
            {fmt(v)}
          </text>
        </g>
      ))}
      <text x={4} y={TOP + 8} font-size="11" fill="#545b6e">
        {unit}
      </text>
      {stamps.map((t, i) => (
        <text x={x(frame, t)} y={H - 8} text-anchor={i === 0 ? "start" : i === 4 ? "end" : "middle"} font-size="11" fill="#545b6e">
          {timeLabel(t, span)}
        </text>
      ))}
    </g>
  );
};

const Markers: FC<{ frame: Frame; markers: ChartMarker[] }> = ({ frame, markers }) => (
  <g class="markers">
    {markers
      .filter((m) => m.t >= frame.from && m.t <= frame.to)
      .map((m) => (
        <g class={`marker marker-${m.kind}`} data-kind={m.kind} data-t={new Date(m.t).toISOString()}>
          <title>{`${new Date(m.t).toISOString().slice(0, 16).replace("T", " ")} UTC: ${m.label}`}</title>
          <line
            x1={x(frame, m.t)}
            x2={x(frame, m.t)}
            y1={TOP}
            y2={H - BOTTOM}
            stroke={MARKER_COLORS[m.kind] ?? "#545b6e"}
            stroke-width="1.5"
            stroke-dasharray="3 2"
          />
          <circle cx={x(frame, m.t)} cy={TOP + 3} r="3.5" fill={MARKER_COLORS[m.kind] ?? "#545b6e"} />
        </g>
      ))}
  </g>
);

const Legend: FC<{ items: Array<{ name: string; color: string; dashed?: boolean }> }> = ({ items }) => (
  <ul class="legend">
    {items.map((i) => (
      <li>
        <svg width="18" height="10" aria-hidden="true">
          <line x1="0" x2="18" y1="5" y2="5" stroke={i.color} stroke-width="3" stroke-dasharray={i.dashed ? "4 3" : undefined} />
        </svg>{" "}
        {i.name}
      </li>
    ))}
  </ul>
);

/** What every chart of a page shares: its time axis and the events drawn on it. */
export interface TimeAxis {
  /** Bucket starts. */
  times: number[];
  to: number;
  resolutionMs: number;
  markers: ChartMarker[];
}

/** A chart's own: `id` names the figure for the page's tests and its live refresh. */
interface ChartHead {
  id: string;
  title: string;
  unit: string;
}

/** Lines over time. */
export const LineChart: FC<TimeAxis & ChartHead & { lines: ChartLine[]; floorMax?: number }> = (p) => {
  const max = niceCeiling(Math.max(p.floorMax ?? 0, ...p.lines.flatMap((l) => l.values.filter((v): v is number => v !== null))));
  const frame: Frame = { times: p.times, from: p.times[0] ?? p.to, to: p.to, max };
  const mid = (t: number) => t + p.resolutionMs / 2;
  return (
    <figure class="chart" id={p.id}>
      <figcaption>{p.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${p.title}, ${p.unit}`} data-max={String(max)}>
        <Axes frame={frame} unit={p.unit} />
        {p.lines.map((line) => {
          // A run of points without gaps is one path; a gap (no data) starts another.
          const runs: string[] = [];
          let run = "";
          line.values.forEach((v, i) => {
            if (v === null) {
              if (run) runs.push(run);
              run = "";
              return;
            }
            run += `${run ? "L" : "M"}${x(frame, mid(p.times[i]!)).toFixed(1)},${y(frame, v).toFixed(1)}`;
          });
          if (run) runs.push(run);
          return (
            <g class="series" data-series={line.name}>
              {runs.map((d) => {
                if (d.includes("L")) return <path d={d} fill="none" stroke={line.color} stroke-width="2" stroke-dasharray={line.dashed ? "6 4" : undefined} />;
                // A lone point (data in one bucket only) is a dot, not an invisible line.
                const [cx, cy] = d.slice(1).split(",");
                return <circle class="point" cx={cx} cy={cy} r="3" fill={line.color} />;
              })}
            </g>
          );
        })}
        <Markers frame={frame} markers={p.markers} />
      </svg>
      <Legend items={p.lines} />
    </figure>
  );
};

export interface BarStack {
  name: string;
  values: number[];
  color: string;
}

/** Stacked bars per time bucket (throughput by status class). */
export const StackedBars: FC<TimeAxis & ChartHead & { stacks: BarStack[] }> = (p) => {
  const totals = p.times.map((_, i) => p.stacks.reduce((n, s) => n + (s.values[i] ?? 0), 0));
  const frame: Frame = { times: p.times, from: p.times[0] ?? p.to, to: p.to, max: niceCeiling(Math.max(0, ...totals)) };
  const width = Math.max(1, x(frame, (p.times[0] ?? 0) + p.resolutionMs) - x(frame, p.times[0] ?? 0) - 1);
  return (
    <figure class="chart" id={p.id}>
      <figcaption>{p.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${p.title}, ${p.unit}`} data-max={String(frame.max)}>
        <Axes frame={frame} unit={p.unit} />
        {p.stacks.map((stack, si) => (
          <g class="series" data-series={stack.name}>
            {p.times.map((t, i) => {
              const v = stack.values[i] ?? 0;
              if (!v) return null;
              const below = p.stacks.slice(0, si).reduce((n, s) => n + (s.values[i] ?? 0), 0);
              return (
                <rect
                  x={x(frame, t).toFixed(1)}
                  y={y(frame, below + v).toFixed(1)}
                  width={width.toFixed(1)}
                  height={(y(frame, below) - y(frame, below + v)).toFixed(1)}
                  fill={stack.color}
                  data-value={String(v)}
                >
                  <title>{`${new Date(t).toISOString().slice(0, 16).replace("T", " ")} UTC: ${v} ${stack.name}`}</title>
                </rect>
              );
            })}
          </g>
        ))}
        <Markers frame={frame} markers={p.markers} />
      </svg>
      <Legend items={p.stacks} />
    </figure>
  );
};
