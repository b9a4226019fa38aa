import { GitProtocolError, PktLineReader } from "./pkt-line.ts";

/** The object id git uses for "no object": a created or deleted ref. */
export const ZERO_ID = "0".repeat(40);

/** At most this many ref updates per push; a longer list is not a real push. */
const MAX_COMMANDS = 1000;

/** One ref update a client asks for. */
export interface RefCommand {
  oldId: string;
  newId: string;
  ref: string;
}

/** What a `git-receive-pack` request says before its pack. */
export interface ReceivePackRequest {
  commands: RefCommand[];
  /** Capabilities the client chose (from the first command line). */
  capabilities: string[];
  /** The pack bytes that follow the commands, if any; null for the empty probe request. */
  pack: ReadableStream<Uint8Array> | null;
}

const COMMAND_RE = /^([0-9a-f]{40}) ([0-9a-f]{40}) (refs\/[^\x00-\x20\x7f~^:?*[\\]+)$/;
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Parses one command line (`<old> <new> <ref>[\0<capabilities>]`). Pure. */
export function parseCommandLine(payload: Uint8Array, first: boolean): { command: RefCommand; capabilities: string[] } {
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch {
    throw new GitProtocolError("protocol error: command line is not UTF-8");
  }
  if (text.endsWith("\n")) text = text.slice(0, -1);
  let capabilities: string[] = [];
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    if (!first) throw new GitProtocolError("protocol error: capabilities after the first command");
    capabilities = text
      .slice(nul + 1)
      .split(" ")
      .filter(Boolean);
    text = text.slice(0, nul);
  }
  if (text.startsWith("shallow ")) throw new GitProtocolError("pushes from shallow clones are not supported; fetch the full history first");
  if (text.startsWith("push-cert")) throw new GitProtocolError("signed pushes are not supported");
  const m = COMMAND_RE.exec(text);
  if (!m || m[3]!.includes("..") || m[3]!.endsWith("/") || m[3]!.endsWith(".lock")) {
    throw new GitProtocolError(`protocol error: expected "<old> <new> <ref>", got ${JSON.stringify(text.slice(0, 100))}`);
  }
  return { command: { oldId: m[1]!, newId: m[2]!, ref: m[3]! }, capabilities };
}

/**
 * Reads a receive-pack request body: command lines up to a flush, then the pack. Git
 * probes with a lone `0000` before large pushes; that gives no commands and no pack.
 */
export async function readReceivePackRequest(body: ReadableStream<Uint8Array>): Promise<ReceivePackRequest> {
  const reader = new PktLineReader(body);
  const commands: RefCommand[] = [];
  let capabilities: string[] = [];
  for (;;) {
    const pkt = await reader.read();
    if (pkt === null) {
      if (commands.length) throw new GitProtocolError("protocol error: the command list ended without a flush");
      return { commands, capabilities, pack: null };
    }
    if (pkt === "flush") break;
    if (commands.length >= MAX_COMMANDS) throw new GitProtocolError(`a push may update at most ${MAX_COMMANDS} refs`);
    const parsed = parseCommandLine(pkt, commands.length === 0);
    if (commands.length === 0) capabilities = parsed.capabilities;
    commands.push(parsed.command);
  }
  if (!commands.length) {
    await reader.cancel();
    return { commands, capabilities, pack: null };
  }
  // Deletions alone come without a pack; anything else is followed by one.
  return { commands, capabilities, pack: reader.rest() };
}
