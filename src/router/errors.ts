/** Heroku's router error codes and their log descriptions. */
export const ROUTER_ERRORS = {
  H10: "App crashed",
  H12: "Request timeout",
  H13: "Connection closed without response",
  H14: "No web processes running",
  H20: "App boot timeout",
  H80: "Maintenance mode",
  H82: "Eco dyno quota exhausted",
} as const;

export type RouterErrorCode = keyof typeof ROUTER_ERRORS;

export interface RouterLogFields {
  method: string;
  path: string;
  host: string;
  requestId: string;
  fwd: string;
  dyno?: string;
  connectMs: number;
  serviceMs: number;
  status: number;
  bytes: number;
  protocol: string;
}

/** A `heroku[router]` line as Heroku writes it, with `at=error code=...` for failures (H80 is `at=info`). Pure. */
export function routerLogLine(f: RouterLogFields, code?: RouterErrorCode): string {
  const head = code ? `at=${code === "H80" ? "info" : "error"} code=${code} desc="${ROUTER_ERRORS[code]}"` : "at=info";
  const path = JSON.stringify(f.path.length > 2048 ? f.path.slice(0, 2048) : f.path);
  return (
    `${head} method=${f.method} path=${path} host=${f.host} request_id=${f.requestId} fwd="${f.fwd}" dyno=${f.dyno ?? ""} ` +
    `connect=${f.connectMs}ms service=${f.serviceMs}ms status=${f.status} bytes=${f.bytes} protocol=${f.protocol}`
  );
}
