/**
 * The dashboard's one stylesheet, served by the Worker (no build step). Colours keep text
 * at 4.5:1 or better against its background; focus is always visible.
 */
export const STYLESHEET = `
:root {
  --bg: #f4f5f8; --panel: #fff; --text: #1d2130; --muted: #545b6e; --line: #d5d9e2;
  --accent: #5a3d99; --accent-dark: #432b78; --danger: #b3261e; --ok: #1e6b3a; --warn: #8a5300;
  --radius: 8px; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
html { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--text); background: var(--bg); line-height: 1.5; }
body { margin: 0; }
a { color: var(--accent); }
a:hover { color: var(--accent-dark); }
:focus-visible { outline: 3px solid #1a5fd0; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--panel); padding: .5rem 1rem; z-index: 10; }
.skip:focus { left: 1rem; }
.muted { color: var(--muted); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.spaced { margin-top: 1rem; }
caption { text-align: left; padding: .5rem 0 .25rem; }
code, pre, .mono { font-family: var(--mono); font-size: .9em; }

.topbar { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .5rem 1.5rem;
  padding: .75rem 1.5rem; background: #2b1f4a; color: #fff; }
.topbar a, .topbar .link { color: #fff; }
.topbar .muted { color: #d9d3ea; }
.brand { font-weight: 700; font-size: 1.15rem; text-decoration: none; letter-spacing: .02em; }
.topbar nav { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; }
.topbar nav a { text-decoration: none; padding: .25rem 0; border-bottom: 2px solid transparent; }
.topbar nav a[aria-current="page"] { border-bottom-color: #fff; }

main { max-width: 68rem; margin: 0 auto; padding: 1.5rem; }
main:focus { outline: none; }
h1 { font-size: 1.6rem; margin: .25rem 0 1rem; word-break: break-word; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .75rem; }
h2:first-child { margin-top: 0; }
.crumbs { margin: 0; color: var(--muted); }

.panel, .card { background: var(--panel); border: 1px solid var(--line); border-radius: var(--radius); padding: 1.25rem 1.5rem; }
.card { max-width: 28rem; margin: 6vh auto; }
.card h1 { font-size: 1.4rem; }
.tabs { display: flex; flex-wrap: wrap; gap: .25rem; border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
.tabs a { padding: .5rem .9rem; text-decoration: none; color: var(--muted); border-bottom: 3px solid transparent; margin-bottom: -1px; }
.tabs a[aria-current="page"] { color: var(--text); border-bottom-color: var(--accent); font-weight: 600; }

.flash { padding: .75rem 1rem; border-radius: var(--radius); margin: 0 0 1rem; border: 1px solid; }
.flash-notice { background: #e8f4ec; border-color: #9cc9aa; color: var(--ok); }
.flash-error { background: #fbeaea; border-color: #e0a3a0; color: var(--danger); }

form { margin: 0; }
form.inline { display: inline; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
.field-row { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; }
.field-row > div { flex: 1 1 10rem; min-width: 0; }
.field-row label { margin-top: 0; }
input[type=text], input[type=email], input[type=password], input[type=number], select, textarea {
  width: 100%; padding: .5rem .6rem; font: inherit; color: var(--text); background: #fff;
  border: 1px solid #8a90a0; border-radius: 6px; }
input[type=number] { max-width: 7rem; }
.hint { color: var(--muted); font-size: .9rem; margin: .25rem 0 0; }
button, .button { display: inline-block; font: inherit; font-weight: 600; padding: .5rem 1rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; }
button:hover, .button:hover { background: var(--accent-dark); color: #fff; }
button.secondary { background: #fff; color: var(--accent); }
button.secondary:hover { background: #f1edf9; color: var(--accent-dark); }
button.danger { background: var(--danger); border-color: var(--danger); }
button.danger:hover { background: #8c1d17; }
button.link { background: none; border: none; padding: 0; font-weight: 400; text-decoration: underline; color: var(--accent); }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: 1rem; }

table { width: 100%; border-collapse: collapse; }
.table-wrap { overflow-x: auto; }
th, td { text-align: left; padding: .55rem .5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
td form { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; }
td form input[type=text] { flex: 1 1 12rem; width: auto; }

dl { margin: 0; display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr)); gap: 1rem; }
.fact dt { font-size: .85rem; color: var(--muted); }
.fact dd { margin: .15rem 0 0; word-break: break-all; }

.state { display: inline-block; padding: .1rem .5rem; border-radius: 999px; font-size: .85rem; font-weight: 600; border: 1px solid; }
.state-up { color: var(--ok); border-color: #9cc9aa; background: #e8f4ec; }
.state-starting, .state-sleeping { color: var(--warn); border-color: #e2c28f; background: #fdf4e4; }
.state-crashed, .state-down { color: var(--danger); border-color: #e0a3a0; background: #fbeaea; }

.app-list { list-style: none; margin: 0; padding: 0; }
.app-list li { display: flex; flex-direction: column; gap: .15rem; padding: .75rem .25rem; border-bottom: 1px solid var(--line); }
.app-list .app-name { font-weight: 600; font-size: 1.05rem; }
.app-meta { overflow-wrap: anywhere; }
.process { border: 1px solid var(--line); border-radius: var(--radius); padding: 1rem; margin-bottom: 1rem; }
.process h3 { margin: 0 0 .25rem; font-size: 1.05rem; }
.secret { font-family: var(--mono); background: #f1f2f6; border: 1px dashed #8a90a0; padding: .75rem; border-radius: 6px; word-break: break-all; }
.danger-zone { border: 1px solid #e0a3a0; border-radius: var(--radius); padding: 1rem; margin-top: 2rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
.facts dt { font-weight: 600; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
details.credentials { border: 1px solid var(--line); border-radius: var(--radius); padding: .5rem 1rem; margin: 1rem 0; }
details.credentials summary { cursor: pointer; font-weight: 600; }
.danger-zone h2 { color: var(--danger); margin-top: 0; }

.log-filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin-bottom: 1rem; }
.log-filters label { margin: 0 0 .25rem; }
.log { background: #14111c; color: #e6e3ee; padding: 1rem; border-radius: var(--radius); min-height: 18rem; max-height: 60vh;
  overflow: auto; white-space: pre-wrap; word-break: break-all; font-size: .85rem; margin: 0; }
.log .heroku { color: #c9b8ff; }
.live-status { font-size: .9rem; color: var(--muted); }

@media (max-width: 40rem) {
  main { padding: 1rem; }
  .panel, .card { padding: 1rem; }
  .topbar { padding: .75rem 1rem; }
  th.optional, td.optional { display: none; }
}

/* Metrics tab */
.chips { display: flex; flex-wrap: wrap; gap: .4rem; margin: 0 0 .75rem; }
.chips a { padding: .2rem .7rem; border: 1px solid var(--line); border-radius: 999px; text-decoration: none; color: var(--muted); }
.chips a[aria-current="page"] { border-color: var(--accent); color: var(--text); font-weight: 600; }
.metrics-summary { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; margin: .5rem 0 1rem; }
.metrics-summary .fact dd { font-size: 1.1rem; word-break: normal; }
.chart { margin: 1rem 0 1.5rem; }
.chart figcaption { font-weight: 600; margin-bottom: .25rem; }
.chart svg { width: 100%; height: auto; max-width: 900px; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: .25rem 1rem; list-style: none; padding: 0; margin: .25rem 0 0; font-size: .85rem; color: var(--muted); }
.legend li { display: flex; align-items: center; gap: .35rem; white-space: nowrap; }
.event-kind { font-weight: 600; }
`;
