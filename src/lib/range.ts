import { ApiError } from "../errors.ts";

/** A parsed Heroku `Range` header: `<field> [start]..[end]; max=N, order=asc|desc`. */
export interface PageRange {
  field: string;
  /** First value to include (or, when `exclusive`, the value just before the page). */
  start?: string;
  exclusive: boolean;
  end?: string;
  max: number;
  order: "asc" | "desc";
}

export const DEFAULT_PAGE_SIZE = 200;
export const MAX_PAGE_SIZE = 1000;

/**
 * Parses a Range header for a list whose sortable fields are `fields` (the first is the
 * default). Both separators the CLI uses are accepted: `; max=15, order=desc` and
 * `; order=desc,max=1`. An empty or absent header gives the first page.
 */
export function parseRange(header: string | undefined | null, fields: readonly string[]): PageRange {
  const defaultField = fields[0]!;
  const fallback: PageRange = { field: defaultField, exclusive: false, max: DEFAULT_PAGE_SIZE, order: "asc" };
  if (!header?.trim()) return fallback;

  const [head = "", ...paramParts] = header.split(";");
  const params = paramParts.join(";");
  const m = /^\s*([a-z_]+)(?:\s+(.*?))?\s*$/.exec(head);
  if (!m) throw new ApiError("bad_request", `Invalid Range header: ${header}`);
  const field = m[1]!;
  if (!fields.includes(field)) {
    throw new ApiError("bad_request", `Invalid Range header: ${field} is not a valid sort field (use ${fields.join(", ")}).`);
  }
  const range: PageRange = { ...fallback, field };
  const bounds = m[2] ?? "";
  if (bounds) {
    const dots = bounds.indexOf("..");
    if (dots < 0) throw new ApiError("bad_request", `Invalid Range header: ${header}`);
    let start = bounds.slice(0, dots);
    if (start.startsWith("]")) {
      range.exclusive = true;
      start = start.slice(1);
    }
    if (start) range.start = start;
    const end = bounds.slice(dots + 2);
    if (end) range.end = end;
  }

  for (const raw of params.split(/[,;]/)) {
    const part = raw.trim();
    if (!part) continue;
    const [key, value = ""] = part.split("=").map((s) => s.trim());
    if (key === "max") {
      const max = Number(value);
      if (!/^\d+$/.test(value) || max < 1) throw new ApiError("bad_request", `Invalid Range header: max must be a positive integer.`);
      range.max = Math.min(max, MAX_PAGE_SIZE);
    } else if (key === "order") {
      if (value !== "asc" && value !== "desc") throw new ApiError("bad_request", `Invalid Range header: order must be asc or desc.`);
      range.order = value;
    } else {
      throw new ApiError("bad_request", `Invalid Range header: unknown parameter ${key}.`);
    }
  }
  return range;
}

/** The `Next-Range` header value that continues after `lastValue`. */
export function nextRange(range: PageRange, lastValue: string): string {
  return `${range.field} ]${lastValue}..; max=${range.max}, order=${range.order}`;
}
