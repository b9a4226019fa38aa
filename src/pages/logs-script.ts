/**
 * The dashboard's only script: the live log view. It replaces the server-rendered history
 * with a log session's Server-Sent Events stream (the same stream `heroku logs --tail`
 * reads). EventSource resumes by itself with Last-Event-ID when a stream ends; when the
 * session's URL expires, the page asks for a new one and skips lines it already shows.
 */
export const LOGS_SCRIPT = `
(() => {
  "use strict";
  const pre = document.getElementById("log");
  const status = document.getElementById("live-status");
  if (!pre || !status || !window.EventSource || !pre.dataset.stream) return;
  const MAX_LINES = 2000;
  let lastId = 0;
  let failures = 0;
  const show = (text) => { status.textContent = text; };
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;

  function append(text) {
    const stick = atBottom();
    const row = document.createElement("span");
    row.className = /^\\S+ heroku\\[/.test(text) ? "line heroku" : "line";
    row.textContent = text + "\\n";
    pre.appendChild(row);
    while (pre.childNodes.length > MAX_LINES) pre.removeChild(pre.firstChild);
    if (stick) pre.scrollTop = pre.scrollHeight;
  }

  function connect(url) {
    const source = new EventSource(url);
    source.onopen = () => {
      failures = 0;
      show("Live: new lines appear as they are logged.");
    };
    source.onmessage = (event) => {
      const id = Number(event.lastEventId);
      if (id && id <= lastId) return;
      if (id) lastId = id;
      append(event.data);
    };
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) return show("Connection lost; reconnecting…");
      source.close();
      renew();
    };
  }

  async function renew() {
    if (++failures > 5) return show("The live view stopped. Reload the page to resume.");
    show("Reconnecting…");
    try {
      const res = await fetch(pre.dataset.renew, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const body = await res.json();
      setTimeout(() => connect(body.url), 1000 * failures);
    } catch (err) {
      show("The live view stopped (" + err.message + "). Reload the page to resume.");
    }
  }

  pre.textContent = "";
  show("Connecting to the live log…");
  connect(pre.dataset.stream);
})();
`;
