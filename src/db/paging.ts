import { and, asc, desc, gt, gte, lt, lte, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import { ApiError } from "../errors.ts";
import { nextRange, type PageRange } from "../lib/range.ts";

/** A sortable field of a list: its column, a check for Range values, and how a row prints it. */
export interface SortField<Row> {
  column: PgColumn;
  valid: (value: string) => boolean;
  parse?: (value: string) => unknown;
  valueOf: (row: Row) => string;
}

export interface Page<T> {
  items: T[];
  /** Set when more rows follow; sent as `Next-Range`. */
  nextRange?: string;
}

/** The WHERE, ORDER BY and LIMIT for one page of `range` (one extra row tells whether more follow). */
export function pageClauses<Row>(range: PageRange, fields: Record<string, SortField<Row>>) {
  const field = fields[range.field]!;
  const conds: SQL[] = [];
  const bound = (value: string) => {
    if (!field.valid(value)) throw new ApiError("bad_request", `Invalid Range header: bad ${range.field} value.`);
    return field.parse ? field.parse(value) : value;
  };
  const ascending = range.order === "asc";
  if (range.start !== undefined) {
    const v = bound(range.start);
    conds.push(ascending ? (range.exclusive ? gt : gte)(field.column, v) : (range.exclusive ? lt : lte)(field.column, v));
  }
  if (range.end !== undefined) {
    const v = bound(range.end);
    conds.push(ascending ? lte(field.column, v) : gte(field.column, v));
  }
  return {
    where: conds.length ? and(...conds) : undefined,
    orderBy: ascending ? asc(field.column) : desc(field.column),
    limit: range.max + 1,
  };
}

/** Trims the extra row and computes Next-Range. */
export function finishPage<Row>(rows: Row[], range: PageRange, fields: Record<string, SortField<Row>>): Page<Row> {
  if (rows.length <= range.max) return { items: rows };
  const items = rows.slice(0, range.max);
  return { items, nextRange: nextRange(range, fields[range.field]!.valueOf(items[items.length - 1]!)) };
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string) => UUID_RE.test(value);
