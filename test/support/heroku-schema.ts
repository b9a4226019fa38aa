import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AnySchemaObject, ErrorObject, ValidateFunction } from "ajv";
import Ajv from "ajv-draft-04";

/**
 * Heroku's Platform API JSON hyper-schema (interagent flavour of draft-04). It lives in
 * the project's shared folder beside the repository; HEROKU_SCHEMA_PATH overrides that.
 */
const SCHEMA_PATH =
  process.env.HEROKU_SCHEMA_PATH ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../shared/heroku-platform-api.schema.json");

/** The id the whole document is registered under; every compiled validator refs into it. */
export const SCHEMA_ID = "https://api.heroku.com/schema";

/**
 * Heroku's app URLs name Heroku's hosts. dynoplane's have the same structure on the
 * operator's domains: `git_url` is `https://<api host>[:port]/<app>.git` and `web_url`
 * is `https://<app>.<apps domain>[:port]/`, the app name following Heroku's name rule.
 */
const HOST = String.raw`[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::\d{1,5})?`;
const APP_NAME = "[a-z][a-z0-9-]{1,28}[a-z0-9]";
const RELAXED_PATTERNS: Record<string, { heroku: RegExp; ours: string }> = {
  "app/git_url": { heroku: /git\\\.heroku\\\.com/, ours: `^https://${HOST}/${APP_NAME}\\.git$` },
  "app/web_url": { heroku: /herokuapp\\\.com/, ours: `^https://${APP_NAME}\\.${HOST}/$` },
};

/**
 * Format checks for the formats the document uses. Times are RFC 3339 (the offset is
 * required), calendar days must exist, uuids are the 8-4-4-4-12 hex form, and a uri
 * must be absolute.
 */
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month >= 1 && month <= 12 && day >= 1 && day <= (month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1]!);
}
function isDateTime(s: string): boolean {
  const m = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/.exec(s);
  if (!m || !isDate(m[1]!)) return false;
  const [h, min, sec] = [Number(m[2]), Number(m[3]), Number(m[4])];
  const offsetOk = m[5] === undefined || (Number(m[5]) < 24 && Number(m[6]) < 60);
  return h < 24 && min < 60 && sec <= 60 && offsetOk;
}
function isUri(s: string): boolean {
  if (!/^[a-z][a-z0-9+.-]*:[^\s]*$/i.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}
const FORMATS: Record<string, (s: string) => boolean> = {
  "date-time": isDateTime,
  date: isDate,
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  email: (s) =>
    /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(s),
  uri: isUri,
  ipv4: (s) => /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(s),
};

/**
 * Hyper-schema and documentation keywords that carry no validation. The document also
 * spells `readonly`, and nests a stray `identity` inside a few field schemas.
 */
const ANNOTATIONS = ["stability", "readOnly", "readonly", "deprecated", "links", "identity"];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The document as dynoplane validates against it: meta-schema pointers and examples dropped, host patterns relaxed. */
function adaptDocument(raw: Json): Json {
  const walk = (node: Json, where: string[]): Json => {
    if (Array.isArray(node)) return node.map((n) => walk(n, where));
    if (node === null || typeof node !== "object") return node;
    const out: { [key: string]: Json } = {};
    for (const [key, value] of Object.entries(node)) {
      // The hyper-schema meta-schemas are not available offline, and validation is plain
      // draft-04. Examples are documentation, and their `id` fields would read as schema ids.
      if (key === "$schema" || key === "example") continue;
      out[key] = walk(value, [...where, key]);
    }
    // definitions/<resource>/definitions/<field>
    if (where.length === 4 && where[0] === "definitions" && where[2] === "definitions") {
      const relaxed = RELAXED_PATTERNS[`${where[1]}/${where[3]}`];
      if (relaxed) {
        if (typeof out.pattern !== "string" || !relaxed.heroku.test(out.pattern)) {
          throw new Error(`expected a Heroku-host pattern at ${where.join("/")}, found ${JSON.stringify(out.pattern)}`);
        }
        out.pattern = relaxed.ours;
      }
    }
    return out;
  };
  return walk(raw, []);
}

/**
 * The published document has no /oauth/sessions resource, though `heroku logout` calls
 * DELETE /oauth/sessions/~ and `heroku sessions` GET /oauth/sessions. dynoplane answers
 * them with the authorization's id, description and times, so the resource is described
 * with oauth-authorization's fields.
 */
const OAUTH_SESSION: Json = {
  description: "The CLI session a token belongs to (dynoplane's description; not in Heroku's document).",
  type: ["object"],
  strictProperties: true,
  properties: {
    id: { $ref: "#/definitions/oauth-authorization/definitions/id" },
    description: { $ref: "#/definitions/oauth-authorization/definitions/description" },
    created_at: { $ref: "#/definitions/oauth-authorization/definitions/created_at" },
    updated_at: { $ref: "#/definitions/oauth-authorization/definitions/updated_at" },
  },
  definitions: { identity: { anyOf: [{ enum: ["~"] }, { $ref: "#/definitions/oauth-authorization/definitions/id" }] } },
  links: [
    {
      description: "List the account's sessions.",
      href: "/oauth/sessions",
      method: "GET",
      rel: "instances",
      title: "List",
      targetSchema: { type: ["array"], items: { $ref: "#/definitions/oauth-session" } },
    },
    {
      description: "End a session: `~` is the token making the request.",
      href: "/oauth/sessions/{(%23%2Fdefinitions%2Foauth-session%2Fdefinitions%2Fidentity)}",
      method: "DELETE",
      rel: "destroy",
      title: "Delete",
      targetSchema: { $ref: "#/definitions/oauth-session" },
    },
  ],
};

/** The eco dyno hours `heroku ps` reads (a variant Heroku serves but its document leaves out). */
const ACCOUNT_QUOTA: Json = {
  description: "An account's monthly pool of eco dyno hours and what it used, in seconds (dynoplane's description; not in Heroku's document).",
  type: ["object"],
  strictProperties: true,
  properties: {
    account_quota: { type: ["integer"], minimum: 0 },
    quota_used: { type: ["integer"], minimum: 0 },
    apps: {
      type: ["array"],
      items: {
        type: ["object"],
        strictProperties: true,
        properties: { app_uuid: { $ref: "#/definitions/app/definitions/id" }, quota_used: { type: ["integer"], minimum: 0 } },
      },
    },
  },
  links: [
    {
      description: "The eco dyno hours of an account (only one's own).",
      href: "/accounts/{(%23%2Fdefinitions%2Faccount%2Fdefinitions%2Fidentity)}/actions/get-quota",
      method: "GET",
      rel: "self",
      title: "Info",
      targetSchema: { $ref: "#/definitions/account-quota" },
    },
    {
      description: "The eco dyno hours of the account making the request.",
      href: "/account/actions/get-quota",
      method: "GET",
      rel: "self",
      title: "Info",
      targetSchema: { $ref: "#/definitions/account-quota" },
    },
  ],
};

const nullableNumber = { type: ["number", "null"] };
const REQUEST_POINT: Json = {
  type: ["object"],
  strictProperties: true,
  properties: {
    t: { type: ["string"], format: "date-time" },
    requests: { type: ["integer"], minimum: 0 },
    status: {
      type: ["object"],
      strictProperties: true,
      properties: Object.fromEntries(["2xx", "3xx", "4xx", "5xx"].map((k) => [k, { type: ["integer"], minimum: 0 }])),
    },
    errors: { type: ["object"], additionalProperties: { type: ["integer"], minimum: 1 } },
    p50_ms: nullableNumber,
    p95_ms: nullableNumber,
    p99_ms: nullableNumber,
    max_ms: nullableNumber,
    bytes: { type: ["integer"], minimum: 0 },
  },
};
const DYNO_POINT: Json = {
  type: ["object"],
  strictProperties: true,
  properties: {
    t: { type: ["string"], format: "date-time" },
    memory_rss_mb: nullableNumber,
    memory_rss_max_mb: nullableNumber,
    memory_swap_mb: nullableNumber,
    memory_total_mb: nullableNumber,
    memory_quota_mb: nullableNumber,
    load_avg_1m: nullableNumber,
    load_max_1m: nullableNumber,
    restarts: { type: ["integer"], minimum: 0 },
  },
};

/** dynoplane's metrics extension (`GET /apps/{app}/metrics`), which Heroku's Platform API does not have. */
const APP_METRICS: Json = {
  description: "An app's router and dyno metrics over a range, with the events on the same axis (a dynoplane extension).",
  type: ["object"],
  strictProperties: true,
  properties: {
    app: {
      type: ["object"],
      strictProperties: true,
      properties: { id: { $ref: "#/definitions/app/definitions/id" }, name: { $ref: "#/definitions/app/definitions/name" } },
    },
    range: { enum: ["1h", "24h", "7d", "30d"] },
    process_type: { type: ["string", "null"] },
    from: { type: ["string"], format: "date-time" },
    to: { type: ["string"], format: "date-time" },
    resolution_s: { enum: [60, 600, 3600] },
    process_types: { type: ["array"], items: { type: ["string"] } },
    requests: { type: ["object"], additionalProperties: { type: ["array"], items: REQUEST_POINT } },
    totals: { type: ["object"], additionalProperties: REQUEST_POINT },
    dynos: {
      type: ["object"],
      additionalProperties: {
        type: ["object"],
        strictProperties: true,
        properties: { type: { type: ["string"] }, points: { type: ["array"], items: DYNO_POINT } },
      },
    },
    events: {
      type: ["array"],
      items: {
        type: ["object"],
        required: ["t", "kind", "message"],
        properties: {
          t: { type: ["string"], format: "date-time" },
          kind: { enum: ["deploy", "rollback", "config", "release", "scale", "restart", "crash", "error", "sleep", "wake", "ping"] },
          message: { type: ["string"] },
          version: { type: ["integer"] },
          dyno: { type: ["string"] },
          code: { type: ["string"] },
        },
      },
    },
    eco: {
      anyOf: [
        { type: ["null"] },
        {
          type: ["object"],
          strictProperties: true,
          properties: {
            month: { type: ["string"] },
            pool_hours: { type: ["number"] },
            used_hours: { type: ["number"] },
            projected_hours: {
              type: ["object"],
              strictProperties: true,
              properties: { with_keep_alive: { type: ["number"] }, round_the_clock: { type: ["number"] }, without_keep_alive: { type: ["number"] } },
            },
            exhausted_until: { type: ["string", "null"], format: "date-time" },
          },
        },
      ],
    },
  },
  links: [
    {
      description: "The app's metrics over a range (owners and collaborators).",
      href: "/apps/{(%23%2Fdefinitions%2Fapp%2Fdefinitions%2Fidentity)}/metrics",
      method: "GET",
      rel: "self",
      title: "Info",
      targetSchema: { $ref: "#/definitions/app-metrics" },
    },
  ],
};

export interface HerokuLink {
  /** JSON pointer of the link inside the document, e.g. `/definitions/app/links/2`. */
  pointer: string;
  method: string;
  href: string;
  title: string;
  matches: RegExp;
  /** How many characters of the href are literal; the most literal match wins. */
  literal: number;
  /** True for links dynoplane adds because Heroku's document lacks them. */
  supplement: boolean;
}

export interface HerokuSchema {
  /** The link whose method and href template match a concrete request, or undefined. */
  linkFor(method: string, urlPath: string): HerokuLink | undefined;
  /** Validates a response body against a link's targetSchema; [] when it conforms. */
  validateResponse(method: string, urlPath: string, body: unknown): string[];
  /** Validates against any pointer into the document, e.g. `#/definitions/app`. */
  validate(pointer: string, body: unknown): string[];
  /** Validates against a schema whose `$ref`s are written relative to the document. */
  validateWith(schema: AnySchemaObject, body: unknown): string[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

type Doc = { id?: string; definitions: Record<string, { links?: Array<{ method: string; href: string; title: string }> }> };

function collectLinks(doc: Doc, supplements: Set<string>) {
  const links: HerokuLink[] = [];
  for (const [name, def] of Object.entries(doc.definitions)) {
    (def.links ?? []).forEach((link, i) => {
      const parts = link.href.split(/\{\([^)]*\)\}/);
      links.push({
        pointer: `/definitions/${name}/links/${i}`,
        method: link.method.toUpperCase(),
        href: link.href,
        title: link.title,
        matches: new RegExp(`^${parts.map(escapeRe).join("[^/]+")}$`),
        literal: parts.join("").length,
        supplement: supplements.has(name),
      });
    });
  }
  return links;
}

const describeErrors = (errors: ErrorObject[] | null | undefined) =>
  (errors ?? []).map((e) => `${e.instancePath || "(body)"} ${e.message ?? e.keyword} [${e.schemaPath}] ${JSON.stringify(e.params)}`);

/** Prefixes the document's own `#/...` refs with its id, so a schema outside it can use them. */
function absoluteRefs(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(absoluteRefs);
  if (schema === null || typeof schema !== "object") return schema;
  return Object.fromEntries(
    Object.entries(schema).map(([k, v]) => [k, k === "$ref" && typeof v === "string" && v.startsWith("#") ? SCHEMA_ID + v : absoluteRefs(v)]),
  );
}

let loaded: HerokuSchema | undefined;

/** Loads the hyper-schema once and hands out validators compiled from it. */
export function herokuSchema(): HerokuSchema {
  if (loaded) return loaded;
  if (!existsSync(SCHEMA_PATH)) throw new Error(`Heroku's Platform API schema is not at ${SCHEMA_PATH}; set HEROKU_SCHEMA_PATH`);
  const doc = adaptDocument(JSON.parse(readFileSync(SCHEMA_PATH, "utf8"))) as Doc;
  doc.id = SCHEMA_ID;
  const supplements = new Set<string>();
  if (!doc.definitions["oauth-session"]) {
    doc.definitions["oauth-session"] = OAUTH_SESSION as Doc["definitions"][string];
    supplements.add("oauth-session");
  }
  if (!doc.definitions["app-metrics"]) {
    doc.definitions["app-metrics"] = APP_METRICS as Doc["definitions"][string];
    supplements.add("app-metrics");
  }
  if (!doc.definitions["account-quota"]) {
    doc.definitions["account-quota"] = ACCOUNT_QUOTA as Doc["definitions"][string];
    supplements.add("account-quota");
  }

  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, validateSchema: false });
  for (const [name, check] of Object.entries(FORMATS)) ajv.addFormat(name, { type: "string", validate: check });
  ajv.addVocabulary(ANNOTATIONS);
  // Interagent's `strictProperties: true`: every listed property must be present. Extra
  // properties stay allowed, since Heroku itself sends fields the schema does not list.
  ajv.addKeyword({
    keyword: "strictProperties",
    schemaType: "boolean",
    macro: (strict: boolean, parent: AnySchemaObject) => {
      const names = Object.keys(parent.properties ?? {});
      return strict && names.length ? { required: names } : {};
    },
  });
  ajv.addSchema(doc as AnySchemaObject);

  const links = collectLinks(doc, supplements);
  const compiled = new Map<string, ValidateFunction>();
  const compile = (pointer: string) => {
    let fn = compiled.get(pointer);
    if (!fn) {
      fn = ajv.compile({ $ref: `${SCHEMA_ID}${pointer}` });
      compiled.set(pointer, fn);
    }
    return fn;
  };
  const run = (fn: ValidateFunction, body: unknown) => (fn(body) ? [] : describeErrors(fn.errors));

  loaded = {
    linkFor(method, urlPath) {
      const candidates = links.filter((l) => l.method === method.toUpperCase() && l.matches.test(urlPath.split("?")[0]!));
      return candidates.sort((a, b) => b.literal - a.literal)[0];
    },
    validateResponse(method, urlPath, body) {
      const link = this.linkFor(method, urlPath);
      if (!link) return [`no link in Heroku's schema matches ${method} ${urlPath}`];
      return run(compile(`#${link.pointer}/targetSchema`), body);
    },
    validate(pointer, body) {
      return run(compile(pointer), body);
    },
    validateWith(schema, body) {
      const key = JSON.stringify(schema);
      let fn = compiled.get(key);
      if (!fn) {
        fn = ajv.compile(absoluteRefs(schema as Json) as AnySchemaObject);
        compiled.set(key, fn);
      }
      return run(fn, body);
    },
  };
  return loaded;
}
