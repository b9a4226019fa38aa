/**
 * Server-Sent Events framing for log streams, as the heroku CLI's EventSource reads them:
 * every log line is one event whose `id` is its log-channel id, so a reconnecting client's
 * `Last-Event-ID` says exactly where to resume.
 */

/** How long a tail client waits before reconnecting after the server closed the stream. */
export const SSE_RETRY_MS = 500;

/** One event per line. A line never contains a newline (the agent splits on them), but one is escaped anyway. */
export function sseEvent(id: number | null, data: string): string {
  const body = data
    .split(/\r\n|\r|\n/)
    .map((part) => `data: ${part}\n`)
    .join("");
  return id === null ? `${body}\n` : `id: ${id}\n${body}\n`;
}

/** A comment: keeps proxies and the client from timing out an idle stream; clients ignore it. */
export const sseComment = (text: string) => `: ${text}\n\n`;

/** The reconnection delay field, sent once at the start of a stream. */
export const sseRetry = (ms = SSE_RETRY_MS) => `retry: ${ms}\n\n`;

/** The `Last-Event-ID` a client sent, when it is one of ours (a positive integer). */
export function parseLastEventId(header: string | undefined | null): number | undefined {
  if (!header || !/^\d{1,15}$/.test(header.trim())) return undefined;
  const id = Number(header.trim());
  return id > 0 ? id : undefined;
}

/** Headers of every log stream response. */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache, no-store",
  "X-Accel-Buffering": "no",
};
