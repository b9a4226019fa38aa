import { concatBytes, FLUSH, MAX_PKT_LENGTH, pktLine } from "./pkt-line.ts";
import { ZERO_ID } from "./receive-pack.ts";

/**
 * What the server side of a push writes: the ref advertisement, side-band-64k packets
 * and the report-status block. Pure.
 */

/** Side-band channels: 1 carries protocol data, 2 progress text, 3 a fatal error. */
export type Band = 1 | 2 | 3;

/** Most payload bytes one side-band packet carries (the channel byte takes one). */
export const MAX_BAND_PAYLOAD = MAX_PKT_LENGTH - 5;

/** What the receive-pack service advertises: no `atomic`, `push-options` or `quiet`. */
export const RECEIVE_PACK_CAPABILITIES = ["report-status", "side-band-64k", "delete-refs", "ofs-delta", "agent=dynoplane"];

const encoder = new TextEncoder();

/**
 * The `info/refs?service=git-receive-pack` body: the service header, then each ref with
 * the capabilities on the first line. With no refs, git's `capabilities^{}` placeholder.
 */
export function refAdvertisement(refs: Array<{ id: string; name: string }>, capabilities = RECEIVE_PACK_CAPABILITIES): Uint8Array<ArrayBuffer> {
  const lines = refs.length ? refs : [{ id: ZERO_ID, name: "capabilities^{}" }];
  return concatBytes([
    pktLine("# service=git-receive-pack\n"),
    FLUSH,
    ...lines.map((r, i) => pktLine(i === 0 ? `${r.id} ${r.name}\0${capabilities.join(" ")}\n` : `${r.id} ${r.name}\n`)),
    FLUSH,
  ]);
}

/** `data` on one side-band channel, split into packets of at most 65520 bytes. */
export function sideband(band: Band, data: string | Uint8Array): Uint8Array {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const packets: Uint8Array[] = [];
  let at = 0;
  do {
    const chunk = bytes.subarray(at, at + MAX_BAND_PAYLOAD);
    const payload = new Uint8Array(chunk.length + 1);
    payload[0] = band;
    payload.set(chunk, 1);
    packets.push(pktLine(payload));
    at += MAX_BAND_PAYLOAD;
  } while (at < bytes.length);
  return concatBytes(packets);
}

/** Progress lines for the pusher's terminal; git prefixes each with `remote: `. */
export function progressLines(lines: string[]): Uint8Array {
  if (!lines.length) return new Uint8Array(0);
  // Control characters other than tab could drive the pusher's terminal; carriage returns end a line.
  const text = lines.map((l) => l.replace(/\r/g, "").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "") + "\n").join("");
  return sideband(2, text);
}

/** The result of one ref update: accepted, or refused with a one-line reason. */
export interface RefStatus {
  ref: string;
  error?: string;
}

const oneLine = (s: string) => s.replace(/[\r\n\x00]+/g, " ").trim() || "refused";

/**
 * The report-status block: `unpack ok` (or the unpack error), then `ok <ref>` or
 * `ng <ref> <reason>` per command, then a flush.
 */
export function reportStatus(unpackError: string | null, refs: RefStatus[]): Uint8Array {
  return concatBytes([
    pktLine(unpackError === null ? "unpack ok\n" : `unpack ${oneLine(unpackError)}\n`),
    ...refs.map((r) => pktLine(r.error === undefined ? `ok ${r.ref}\n` : `ng ${r.ref} ${oneLine(r.error)}\n`)),
    FLUSH,
  ]);
}

/** The end of a push response: the report on channel 1 when side-band is on, then a flush. */
export function finalReport(useSideband: boolean, report: Uint8Array): Uint8Array {
  return useSideband ? concatBytes([sideband(1, report), FLUSH]) : report;
}
