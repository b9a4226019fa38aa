import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Heroku's error ids that dynoplane answers with. */
export type ErrorId =
  | "bad_request"
  | "invalid_params"
  | "missing_version"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "payload_too_large"
  | "rate_limit"
  | "unsupported_media_type"
  | "internal_server_error"
  | "unavailable";

const STATUS: Record<ErrorId, ContentfulStatusCode> = {
  bad_request: 400,
  invalid_params: 422,
  missing_version: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limit: 429,
  unsupported_media_type: 415,
  internal_server_error: 500,
  unavailable: 503,
};

/** The one error type the API raises; `onError` renders it as `{ id, message[, resource] }`. */
export class ApiError extends Error {
  readonly status: ContentfulStatusCode;
  constructor(
    readonly id: ErrorId,
    message: string,
    readonly resource?: string,
  ) {
    super(message);
    this.status = STATUS[id];
  }

  toJSON(): { id: ErrorId; message: string; resource?: string } {
    return this.resource ? { id: this.id, message: this.message, resource: this.resource } : { id: this.id, message: this.message };
  }
}

export const notFound = (resource: string, message: string) => new ApiError("not_found", message, resource);
export const invalidParams = (message: string) => new ApiError("invalid_params", message);
export const unauthorized = () => new ApiError("unauthorized", "Invalid credentials provided.");
