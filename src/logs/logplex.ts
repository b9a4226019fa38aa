/**
 * Heroku's HTTPS drain format (`application/logplex-1`): a POST body of octet-counted
 * RFC 5424 syslog frames, `83 <190>1 2026-11-26T12:00:00.000000+00:00 host app web.1 - text\n`,
 * where the count is the byte length of everything after the space, newline included.
 * Like Heroku, the structured-data field is left out and the hostname is `host`.
 */

import { bytesToHex } from "../lib/bytes.ts";

/** The fields of one log line a frame needs. */
export interface FrameLine {
  /** Microseconds since the epoch. */
  ts: number;
  source: string;
  dyno: string;
  text: string;
}

/** Heroku's priorities: local7.info (190) for app output, syslog.notice (45) for its own events. */
const PRIORITY: Record<string, number> = { app: 190, heroku: 45 };

/** `2026-11-26T12:00:00.000000+00:00`, the timestamp of Heroku's log lines and frames. */
export function rfc3339Micros(micros: number): string {
  const whole = Math.floor(micros);
  const iso = new Date(Math.floor(whole / 1000)).toISOString();
  return `${iso.slice(0, 19)}.${String(whole % 1_000_000).padStart(6, "0")}+00:00`;
}

const encoder = new TextEncoder();

/**
 * One octet-counted frame, trailing newline included. `hostname` is `host` in HTTPS drain
 * bodies; syslog drains get the drain's token there, as Heroku sends them. Pure.
 */
export function logplexFrame(line: FrameLine, hostname = "host"): string {
  const msg = `<${PRIORITY[line.source] ?? 190}>1 ${rfc3339Micros(line.ts)} ${hostname} ${line.source} ${line.dyno || "-"} - ${line.text}\n`;
  return `${encoder.encode(msg).length} ${msg}`;
}

/** A whole POST: body and Heroku's headers. The frame id is random, so a receiver can spot a retried batch. */
export function logplexRequest(lines: FrameLine[], drainToken: string): { body: string; headers: Record<string, string> } {
  const id = new Uint8Array(16);
  crypto.getRandomValues(id);
  return {
    body: lines.map((l) => logplexFrame(l)).join(""),
    headers: {
      "Content-Type": "application/logplex-1",
      "Logplex-Msg-Count": String(lines.length),
      "Logplex-Frame-Id": bytesToHex(id).toUpperCase(),
      "Logplex-Drain-Token": drainToken,
      "User-Agent": "Logplex/dynoplane",
    },
  };
}

/** Splits an `application/logplex-1` body back into its messages (for receivers and tests). Pure. */
export function parseLogplexBody(body: Uint8Array): string[] {
  const out: string[] = [];
  let i = 0;
  const decoder = new TextDecoder();
  while (i < body.length) {
    let j = i;
    while (j < body.length && body[j] !== 0x20) j++;
    const len = Number(decoder.decode(body.subarray(i, j)));
    if (!Number.isInteger(len) || len <= 0 || j + 1 + len > body.length) throw new Error(`malformed logplex frame at byte ${i}`);
    out.push(decoder.decode(body.subarray(j + 1, j + 1 + len)).replace(/\n$/, ""));
    i = j + 1 + len;
  }
  return out;
}
