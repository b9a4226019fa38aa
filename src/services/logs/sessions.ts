import { signToken, verifyToken } from "../../auth/signing.ts";
import { formatLogLine, type StoredLine } from "../../logs/lines.ts";
import type { Bindings } from "../../env.ts";
import { ApiError } from "../../errors.ts";
import { parseLastEventId, SSE_HEADERS, sseEvent } from "../../logs/sse.ts";
import { logChannel } from "./logs.ts";

/** A tail session's URL works this long; then the CLI's next reconnect gets 403 and ends. */
export const TAIL_SESSION_TTL_S = 15 * 60;
/** A one-shot session is fetched at once; its URL need not live long. */
export const SESSION_TTL_S = 5 * 60;
/** Longest one tail response lasts; the client then reconnects with Last-Event-ID. */
export const LOG_STREAM_MAX_MS = 5 * 60_000;

/** What a log session shows: the last `lines` matching lines and, with `tail`, what follows. */
export interface LogSessionInput {
  lines: number;
  tail: boolean;
  /** A dyno name (`web.1`) or a process type (`web`). */
  dyno?: string;
  source?: "app" | "heroku";
}

/** A created session, for the serializer. */
export interface LogSession {
  id: string;
  logplexUrl: string;
  createdAt: Date;
}

/**
 * Creates a log session. Nothing is stored: the URL's signed token carries the app, the
 * account it was made for, the filters and the tail flag, and expires on its own, so the
 * URL needs no API token. The account must still reach the app whenever the URL is opened.
 */
export async function createLogSession(
  env: Pick<Bindings, "COMMAND_SIGNING_KEY" | "API_HOST">,
  appId: string,
  accountId: string,
  input: LogSessionInput,
): Promise<LogSession> {
  const id = crypto.randomUUID();
  const token = await signToken(env.COMMAND_SIGNING_KEY, {
    purpose: "log-session",
    audience: id,
    subject: appId,
    ttlSeconds: input.tail ? TAIL_SESSION_TTL_S : SESSION_TTL_S,
    extra: {
      account: accountId,
      lines: input.lines,
      tail: input.tail,
      ...(input.dyno ? { dyno: input.dyno } : {}),
      ...(input.source ? { source: input.source } : {}),
    },
  });
  return { id, logplexUrl: `https://${env.API_HOST}/log-sessions/${id}?token=${token}`, createdAt: new Date() };
}

/** The session a URL's token describes; an invalid or expired token is a 403, which ends a CLI tail. */
async function readSession(env: Pick<Bindings, "COMMAND_SIGNING_KEY">, id: string, token: string) {
  try {
    const claims = await verifyToken(env.COMMAND_SIGNING_KEY, token, "log-session", id);
    const str = (v: unknown) => (typeof v === "string" && v ? v : undefined);
    if (typeof claims.account !== "string" || !claims.account) throw new Error("a session without its account");
    return {
      appId: String(claims.sub),
      accountId: claims.account,
      expiresAt: Number(claims.exp) * 1000,
      lines: Number(claims.lines) || 0,
      tail: claims.tail === true,
      dyno: str(claims.dyno),
      source: str(claims.source),
    };
  } catch {
    throw expiredSession();
  }
}

const expiredSession = () => new ApiError("forbidden", "This log session has expired or is not valid. Request a new one.");

const eventsOf = (lines: StoredLine[]) => lines.map((l) => sseEvent(l.id, formatLogLine(l))).join("");

/**
 * Answers a log session URL with Server-Sent Events: the history (or, with Last-Event-ID,
 * every line after that id), then for tail sessions the live lines until the stream's
 * deadline. Ids are the channel's line ids, so a reconnect neither repeats nor skips. An
 * account that no longer reaches the app (`reaches`) gets the expired session's 403, and
 * its open tails are ended when its access is taken away (`endStreamsOf`).
 */
export async function openLogStream(
  env: Pick<Bindings, "COMMAND_SIGNING_KEY" | "LOG_CHANNEL">,
  req: {
    id: string;
    token: string;
    lastEventId?: string | null;
    signal?: AbortSignal;
    waitUntil: (p: Promise<unknown>) => void;
    reaches: (accountId: string, appId: string) => Promise<boolean>;
  },
): Promise<Response> {
  const { id, token, lastEventId } = req;
  const session = await readSession(env, id, token);
  if (!(await req.reaches(session.accountId, session.appId))) throw expiredSession();
  const afterId = parseLastEventId(lastEventId);
  const filter = { dyno: session.dyno, source: session.source };
  const channel = logChannel(env, session.appId);
  if (!session.tail) {
    const lines = await channel.recent({ ...filter, limit: afterId ? Number.MAX_SAFE_INTEGER : session.lines, afterId });
    return new Response(eventsOf(lines), { headers: SSE_HEADERS });
  }
  const deadline = Math.min(Date.now() + LOG_STREAM_MAX_MS, session.expiresAt);
  let sub: { id: string; stream: ReadableStream<Uint8Array> };
  try {
    sub = await channel.subscribe({ ...filter, lines: session.lines, afterId, deadline, account: session.accountId });
  } catch (err) {
    if (String(err).includes("too many log streams")) throw new ApiError("rate_limit", "Too many log streams are open for this app. Close some and try again.");
    throw err;
  }
  // The client going away must free its subscriber now, not at its deadline.
  req.signal?.addEventListener("abort", () => req.waitUntil(channel.unsubscribe(sub.id).catch(() => undefined)), { once: true });
  return new Response(sub.stream, { headers: SSE_HEADERS });
}
