import type { Context } from "hono";
import type { Page } from "../db/paging.ts";
import type { AppEnv } from "../env.ts";
import { parseRange, type PageRange } from "./range.ts";

/** The request's Range header, checked against the list's sort fields. */
export const rangeOf = (c: Context<AppEnv>, fields: readonly string[]): PageRange => parseRange(c.req.header("Range"), fields);

/** Sends one page of a list: 206 with `Next-Range` when more follow, else 200. */
export function sendPage<T, J>(c: Context<AppEnv>, page: Page<T>, toJson: (item: T) => J) {
  const body = page.items.map(toJson);
  if (!page.nextRange) return c.json(body, 200);
  c.header("Next-Range", page.nextRange);
  return c.json(body, 206);
}
