import { describe, expect, it } from "vitest";
import { DROP_NOTICE_MS, LogBuffer } from "../../src/agent/log-buffer.ts";
import { drainUrlProblem } from "../../src/logs/drain-url.ts";
import { logplexFrame, logplexRequest, parseLogplexBody } from "../../src/logs/logplex.ts";
import { parseLastEventId, sseEvent } from "../../src/logs/sse.ts";
import type { LogLine } from "../../src/protocol/host.ts";

// The framings dynoplane speaks (SSE for the CLI, logplex for drains), the rule for drain
// URLs, and the agent's drop notices: pure functions, checked against Heroku's examples.

const micros = (iso: string) => Date.parse(iso) * 1000;

describe("logplex frames", () => {
  it("octet-counts a frame as Heroku does, newline included", () => {
    // Heroku's documented frame: `83 <40>1 2012-11-30T06:45:29+00:00 host app web.3 - State changed from starting to up`.
    const frame = logplexFrame({ ts: micros("2012-11-30T06:45:29Z"), source: "heroku", dyno: "web.3", text: "State changed from starting to up" });
    // The same message with microseconds (7 more bytes) and `heroku` for a platform line (3 more): 83 + 10.
    expect(frame).toBe("93 <45>1 2012-11-30T06:45:29.000000+00:00 host heroku web.3 - State changed from starting to up\n");
    const [count, rest] = [Number(frame.slice(0, frame.indexOf(" "))), frame.slice(frame.indexOf(" ") + 1)];
    expect(count).toBe(Buffer.byteLength(rest));
    expect(rest.endsWith("\n")).toBe(true);
  });

  it("counts bytes, not characters, and round-trips through the parser", () => {
    const lines = [
      { ts: micros("2026-11-26T12:00:00Z") + 123456, source: "app", dyno: "web.1", text: "héllo wörld ✓" },
      { ts: micros("2026-11-26T12:00:01Z"), source: "heroku", dyno: "router", text: 'at=info method=GET path="/"' },
    ];
    const { body, headers } = logplexRequest(lines, "d.0000");
    expect(headers).toMatchObject({ "Content-Type": "application/logplex-1", "Logplex-Msg-Count": "2", "Logplex-Drain-Token": "d.0000" });
    expect(headers["Logplex-Frame-Id"]).toMatch(/^[0-9A-F]{32}$/);
    expect(parseLogplexBody(new TextEncoder().encode(body))).toEqual([
      "<190>1 2026-11-26T12:00:00.123456+00:00 host app web.1 - héllo wörld ✓",
      '<45>1 2026-11-26T12:00:01.000000+00:00 host heroku router - at=info method=GET path="/"',
    ]);
  });
});

describe("SSE", () => {
  it("frames a line as one event with its id", () => {
    expect(sseEvent(42, "2026-11-26T12:00:00.000000+00:00 app[web.1]: hi")).toBe("id: 42\ndata: 2026-11-26T12:00:00.000000+00:00 app[web.1]: hi\n\n");
    expect(sseEvent(null, "a\nb")).toBe("data: a\ndata: b\n\n");
  });

  it.each<[string | undefined, number | undefined]>([
    ["17", 17],
    [" 17 ", 17],
    ["0", undefined],
    ["-3", undefined],
    ["abc", undefined],
    ["1e5", undefined],
    [undefined, undefined],
  ])("reads Last-Event-ID %j as %j", (header, id) => {
    expect(parseLastEventId(header)).toBe(id);
  });
});

describe("drain URLs", () => {
  const policy = { API_HOST: "api.example.com", APPS_DOMAIN: "apps.example.com", DRAIN_ALLOW_HOSTS: "127.0.0.1:8443, drains.internal:443" };
  it.each<[string, string | null]>([
    ["https://logs.example.org/drain", null],
    ["https://logs.example.org:8443/x?token=1", null],
    ["https://127.0.0.1:8443/drain", null],
    ["https://drains.internal/in", null],
    ["http://logs.example.org/drain", "must use https, syslog or syslog+tls"],
    ["ftp://logs.example.org/drain", "must use https, syslog or syslog+tls"],
    ["syslog+tls://logs.example.org:6514", null],
    ["syslog://logs.example.org:514", null],
    ["syslog+tls://Logs.Example.ORG.:6514", null],
    ["syslog+tls://logs.example.org", "must name its port (syslog+tls://logs.example.com:6514)"],
    ["syslog://logs.example.org:0", "must name its port (syslog+tls://logs.example.com:6514)"],
    ["syslog+tls://logs.example.org:6514/path", "must be a host and port only"],
    ["syslog+tls://user@logs.example.org:6514", "must not contain credentials"],
    ["syslog+tls://127.0.0.1:6514", "must not point at a private, loopback or link-local address"],
    ["syslog://2130706433:514", "must not point at a private, loopback or link-local address"],
    ["syslog+tls://[::1]:6514", "must not point at a private, loopback or link-local address"],
    ["syslog+tls://LOCALHOST.:6514", "must name a public host"],
    ["syslog+tls://api.example.com:6514", "must not point at the platform itself"],
    ["syslog://myapp.apps.example.com.:514", "must not point at the platform itself"],
    ["https://localhost./", "must name a public host"],
    ["https://API.example.com./", "must not point at the platform itself"],
    ["https://user:pw@logs.example.org/", "must not contain credentials"],
    ["https://api.example.com/", "must not point at the platform itself"],
    ["https://myapp.apps.example.com/", "must not point at the platform itself"],
    ["https://127.0.0.1:9/drain", "must not point at a private, loopback or link-local address"],
    ["https://2130706433/", "must not point at a private, loopback or link-local address"],
    ["https://10.1.2.3/", "must not point at a private, loopback or link-local address"],
    ["https://172.20.0.1/", "must not point at a private, loopback or link-local address"],
    ["https://192.168.1.1/", "must not point at a private, loopback or link-local address"],
    ["https://169.254.169.254/latest/meta-data", "must not point at a private, loopback or link-local address"],
    ["https://[::1]/", "must not point at a private, loopback or link-local address"],
    ["https://[fe80::1]/", "must not point at a private, loopback or link-local address"],
    ["https://[fd00::1]/", "must not point at a private, loopback or link-local address"],
    ["https://[::ffff:127.0.0.1]/", "must not point at a private, loopback or link-local address"],
    ["https://[2606:4700::1111]/", null],
    ["https://[::ffff:8.8.8.8]/", null],
    // Ranges that reach IPv4 through a translator, and other non-public ones.
    ["https://[64:ff9b::a00:1]/", "must not point at a private, loopback or link-local address"],
    ["https://[64:ff9b::7f00:1]/", "must not point at a private, loopback or link-local address"],
    ["https://[2002:a00:1::]/", "must not point at a private, loopback or link-local address"],
    ["https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "must not point at a private, loopback or link-local address"],
    ["https://[2001:db8::1]/", "must not point at a private, loopback or link-local address"],
    ["https://[ff02::1]/", "must not point at a private, loopback or link-local address"],
    ["https://100.64.0.1/", "must not point at a private, loopback or link-local address"],
    ["https://192.0.2.10/", "must not point at a private, loopback or link-local address"],
    ["https://0x7f.1/", "must not point at a private, loopback or link-local address"],
    ["https://8.8.8.8/", null],
    ["https://localhost/", "must name a public host"],
    ["https://db.localhost/", "must name a public host"],
    ["https://metadata.google.internal/", "must name a public host"],
    ["https://intranet/", "must name a public host"],
    ["not a url", "is not a valid URL"],
  ])("%s", (url, problem) => {
    expect(drainUrlProblem(url, policy)).toBe(problem);
  });
});

describe("the agent's drop notices", () => {
  const line = (app: string, ts: number): LogLine => ({ app_id: app, dyno: "web.1", source: "app", text: "x", ts });

  it("names each app's drops once per interval, in Heroku's L10 words", () => {
    const buf = new LogBuffer(2);
    const t0 = Date.parse("2026-11-26T12:00:00Z");
    for (let i = 0; i < 5; i++) buf.push(line("a", t0 + i));
    buf.push(line("b", t0 + 9));
    const notices = buf.takeDropNotices(t0 + 10);
    expect(notices.map((n) => [n.app_id, n.dyno, n.source, n.text])).toEqual([
      ["a", "logplex", "heroku", "Error L10 (output buffer overflow): 3 messages dropped since 2026-11-26T12:00:00+00:00."],
      ["b", "logplex", "heroku", "Error L10 (output buffer overflow): 1 messages dropped since 2026-11-26T12:00:00+00:00."],
    ]);
    buf.push(line("a", t0 + 20));
    expect(buf.takeDropNotices(t0 + 30)).toEqual([]); // within the interval: kept for later
    expect(buf.takeDropNotices(t0 + 10 + DROP_NOTICE_MS).map((n) => n.text)).toEqual([
      "Error L10 (output buffer overflow): 1 messages dropped since 2026-11-26T12:00:00+00:00.",
    ]);
    expect(buf.takeDropNotices(t0 + 10 * DROP_NOTICE_MS)).toEqual([]);
    expect(buf.size).toBe(2);
  });
});
