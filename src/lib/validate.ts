import { zValidator } from "@hono/zod-validator";
import type { Context } from "hono";
import type { z } from "zod";
import { ApiError, invalidParams } from "../errors.ts";

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** One readable sentence from a zod failure, naming the offending field. */
export function describeZodError(error: { issues: z.core.$ZodIssue[] }): string {
  const issue = error.issues[0];
  if (!issue) return "Invalid request body.";
  const path = issue.path.join(".");
  if (issue.code === "unrecognized_keys") return `Unknown field${issue.keys.length > 1 ? "s" : ""}: ${issue.keys.join(", ")}.`;
  return path ? `Invalid ${path}: ${issue.message}.` : `Invalid request body: ${issue.message}.`;
}

function requireJsonBody(c: Context) {
  const type = (c.req.header("Content-Type") ?? "").split(";")[0]!.trim();
  if (!JSON_TYPE.test(type)) throw new ApiError("bad_request", "Request bodies must be JSON, sent with Content-Type: application/json.");
}

/**
 * Validates a JSON body against a zod schema (with @hono/zod-validator). A non-JSON or
 * malformed body is a 400 `bad_request`; a body of the wrong shape (types, unknown fields)
 * a 422 `invalid_params` naming the field.
 */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return zValidator("json", schema, (result, c) => {
    requireJsonBody(c);
    if (!result.success) throw invalidParams(describeZodError(result.error));
  });
}
