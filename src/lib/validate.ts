import type { Context, MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import type { z } from "zod";
import type { AppEnv } from "../env.ts";
import { ApiError, invalidParams } from "../errors.ts";

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** One readable sentence from a zod failure, naming the offending field. */
export function describeZodError(error: z.ZodError): string {
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
 * Validates a JSON body against a zod schema. A non-JSON or malformed body is a 400
 * `bad_request`; a body of the wrong shape (types, unknown fields) a 422 `invalid_params`.
 */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return validator("json", (value, c) => {
    requireJsonBody(c);
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw invalidParams(describeZodError(parsed.error));
    return parsed.data as z.output<T>;
  }) as MiddlewareHandler<AppEnv, string, { in: { json: z.input<T> }; out: { json: z.output<T> } }>;
}
