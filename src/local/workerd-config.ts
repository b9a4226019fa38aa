import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import type { Config, Service, Socket, Worker_Binding } from "miniflare";
import { parse as parseToml } from "smol-toml";

/** The parts of wrangler.toml that say how the Worker runs. */
export interface WranglerConfig {
  name: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  durableObjects: Array<{ binding: string; className: string }>;
  r2Buckets: Array<{ binding: string; bucket: string }>;
  /** `[triggers] crons`: the schedules Cloudflare fires the Worker on. */
  crons: string[];
}

export function readWranglerConfig(file: string): WranglerConfig {
  const toml = parseToml(readFileSync(file, "utf8")) as {
    name: string;
    compatibility_date: string;
    compatibility_flags?: string[];
    vars?: Record<string, unknown>;
    durable_objects?: { bindings?: Array<{ name: string; class_name: string }> };
    r2_buckets?: Array<{ binding: string; bucket_name: string }>;
    triggers?: { crons?: unknown };
  };
  return {
    name: toml.name,
    compatibilityDate: toml.compatibility_date,
    compatibilityFlags: toml.compatibility_flags ?? [],
    vars: Object.fromEntries(Object.entries(toml.vars ?? {}).map(([k, v]) => [k, String(v)])),
    durableObjects: (toml.durable_objects?.bindings ?? []).map((b) => ({ binding: b.name, className: b.class_name })),
    r2Buckets: (toml.r2_buckets ?? []).map((b) => ({ binding: b.binding, bucket: b.bucket_name })),
    crons: Array.isArray(toml.triggers?.crons) ? toml.triggers.crons.filter((c): c is string => typeof c === "string") : [],
  };
}

export interface WorkerdOptions {
  wrangler: WranglerConfig;
  /** The bundle `wrangler deploy --dry-run` wrote: what Cloudflare runs. */
  bundle: string;
  /** Variables and secrets over wrangler.toml's `[vars]`. */
  vars: Record<string, string>;
  /** The public HTTPS socket. */
  address: string;
  certificateChain: string;
  privateKey: string;
  /** PEM certificates the Worker's outbound TLS trusts besides the public CAs (the local CA). */
  trustedCertificates: string[];
  /** A Unix socket for the platform's own calls into the Worker (scheduled runs). */
  controlSocket: string;
  /** This machine's own addresses, which tenant-named URLs must not reach even where they are public (see ownAddresses). */
  ownAddresses?: string[];
  /** Durable Object storage and R2 blobs; the layout wrangler dev used (`v3/do`, `v3/r2`), so earlier state is kept. */
  stateDir: string;
  /**
   * A postgres:// URL the Worker's HYPERDRIVE binding reaches, as Hyperdrive's
   * `localConnectionString` does under wrangler: workerd's own Hyperdrive binding, its
   * connections carried as plain TCP to that server (no Hyperdrive pooling locally).
   */
  hyperdrive?: string;
}

const require = createRequire(import.meta.url);

/**
 * R2 for a Worker in plain workerd: workerd's own R2 binding (the R2Bucket API the Worker
 * codes against) turns each call into a request to a service; the service is Miniflare's R2
 * simulator (SQLite metadata in a Durable Object, blobs in a directory), the same one
 * `wrangler dev` runs, loaded from the pinned miniflare package.
 */
function miniflareWorker(file: string): string {
  return readFileSync(path.join(path.dirname(require.resolve("miniflare")), "workers", file), "utf8");
}

const R2_OBJECT = { serviceName: "r2:bucket", className: "R2BucketObject" };

function r2Services(stateDir: string, buckets: WranglerConfig["r2Buckets"]): Service[] {
  if (!buckets.length) return [];
  const compat = { compatibilityDate: "2023-07-24" };
  return [
    { name: "r2:storage", disk: { path: path.join(stateDir, "v3", "r2"), writable: true } },
    {
      name: R2_OBJECT.serviceName,
      worker: {
        ...compat,
        compatibilityFlags: ["nodejs_compat", "experimental"],
        modules: [{ name: "bucket.worker.js", esModule: miniflareWorker("r2/bucket.worker.js") }],
        durableObjectNamespaces: [{ className: R2_OBJECT.className, uniqueKey: `miniflare-${R2_OBJECT.className}` }],
        durableObjectStorage: { localDisk: "r2:storage" },
        bindings: [{ name: "MINIFLARE_BLOBS", service: { name: "r2:storage" } }],
      },
    },
    ...buckets.map(
      ({ bucket }): Service => ({
        name: `r2:bucket:${bucket}`,
        worker: {
          ...compat,
          modules: [{ name: "object-entry.worker.js", esModule: miniflareWorker("shared/object-entry.worker.js") }],
          bindings: [
            { name: "MINIFLARE_NAMESPACE", text: bucket },
            { name: "MINIFLARE_OBJECT", durableObjectNamespace: R2_OBJECT },
          ],
        },
      }),
    ),
  ];
}

/**
 * The Worker the control socket serves: it runs the control plane's `scheduled()` handler
 * as Cloudflare's cron triggers do (a service binding's `scheduled()`), for the local
 * platform's own cron and `dynoplane cron:run`. Only processes that can open the socket
 * (in the platform's private state directory) reach it.
 */
const CONTROL_WORKER = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/scheduled") return new Response("Not found", { status: 404 });
    const { cron, scheduledTime } = await request.json();
    const result = await env.WORKER.scheduled({ cron, scheduledTime: new Date(scheduledTime) });
    return Response.json(result);
  },
};
`;

/** An address as a one-host CIDR block. Pure. */
export function hostPrefix(address: string): string {
  return address.includes(":") ? `${address.replace(/%.*$/, "")}/128` : `${address}/32`;
}

/** The addresses of this machine's network interfaces. */
export function ownAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((i): i is os.NetworkInterfaceInfo => !!i)
    .map((i) => i.address);
}

/** workerd's HTTPS socket on `address` for `service`, serving the certificate chain and key given (PEM). */
export function httpsSocket(address: string, service: string, keypair: { certificateChain: string; privateKey: string }): Socket {
  return { name: "https", address, service: { name: service }, https: { options: {}, tlsOptions: { keypair } } };
}

/**
 * A `HYPERDRIVE` binding to the database at `url` as workerd serves it (what Hyperdrive's
 * `localConnectionString` is under wrangler): the binding, and the service its connections
 * are carried to as plain TCP (no pooling of its own: the local platform's PgBouncer pools).
 */
export function hyperdriveTo(url: string): { binding: Worker_Binding; service: Service } {
  const db = new URL(url);
  return {
    binding: {
      name: "HYPERDRIVE",
      hyperdrive: {
        designator: { name: "hyperdrive" },
        database: decodeURIComponent(db.pathname.slice(1)),
        user: decodeURIComponent(db.username),
        password: decodeURIComponent(db.password),
        scheme: db.protocol.replace(":", ""),
      },
    },
    service: { name: "hyperdrive", external: { address: `${db.hostname}:${db.port || 5432}`, tcp: {} } },
  };
}

/**
 * workerd's configuration for the control plane, from wrangler.toml: the Worker bundle
 * with its variables, its Durable Objects (SQLite on local disk), R2, an outbound network
 * that trusts the local CA, the HTTPS socket, and the control socket. Queue producers are
 * left unbound: plain workerd has no queue broker, and the Worker does the work itself
 * when a queue binding is absent.
 */
export function workerdConfig(opts: WorkerdOptions): Config {
  const { wrangler } = opts;
  const vars = { ...wrangler.vars, ...opts.vars };
  const bindings: Worker_Binding[] = [
    ...Object.entries(vars).map(([name, text]) => ({ name, text })),
    ...wrangler.durableObjects.map(({ binding, className }) => ({ name: binding, durableObjectNamespace: { className } })),
    ...wrangler.r2Buckets.map(({ binding, bucket }) => ({ name: binding, r2Bucket: { name: `r2:bucket:${bucket}` } })),
  ];
  const hyperdrive = opts.hyperdrive ? hyperdriveTo(opts.hyperdrive) : undefined;
  if (hyperdrive) bindings.push(hyperdrive.binding);
  bindings.push({ name: "PUBLIC_NETWORK", service: { name: "public-internet" } });
  return {
    services: [
      {
        name: wrangler.name,
        worker: {
          modules: [{ name: path.basename(opts.bundle), esModule: readFileSync(opts.bundle, "utf8") }],
          compatibilityDate: wrangler.compatibilityDate,
          compatibilityFlags: wrangler.compatibilityFlags,
          bindings,
          durableObjectNamespaces: wrangler.durableObjects.map(({ className }) => ({ className, uniqueKey: `${wrangler.name}-${className}`, enableSql: true })),
          durableObjectStorage: { localDisk: "do:storage" },
          globalOutbound: { name: "outbound" },
        },
      },
      { name: "do:storage", disk: { path: path.join(opts.stateDir, "v3", "do"), writable: true } },
      // The Worker reaches the database proxy, host agents and allowed drains on this machine;
      // which URLs it may fetch is decided by its own checks (drains, webhooks), as on Cloudflare.
      {
        name: "outbound",
        network: { allow: ["public", "private"], tlsOptions: { trustBrowserCas: true, trustedCertificates: opts.trustedCertificates } },
      },
      // Tenant-named URLs (drains, webhooks) go out here: public addresses only, judged on what a
      // name resolves to at connect time, and none of this machine's own (see tenantFetch).
      {
        name: "public-internet",
        network: { allow: ["public"], deny: (opts.ownAddresses ?? []).map(hostPrefix), tlsOptions: { trustBrowserCas: true } },
      },
      ...r2Services(opts.stateDir, wrangler.r2Buckets),
      ...(hyperdrive ? [hyperdrive.service] : []),
      {
        name: "control",
        worker: {
          modules: [{ name: "control.js", esModule: CONTROL_WORKER }],
          compatibilityDate: wrangler.compatibilityDate,
          compatibilityFlags: ["service_binding_extra_handlers"],
          bindings: [{ name: "WORKER", service: { name: wrangler.name } }],
        },
      },
    ],
    sockets: [
      httpsSocket(opts.address, wrangler.name, { certificateChain: opts.certificateChain, privateKey: opts.privateKey }),
      { name: "control", address: `unix:${opts.controlSocket}`, service: { name: "control" }, http: {} },
    ],
    extensions: [
      {
        modules: [
          { name: "miniflare:shared", esModule: miniflareWorker("shared/index.worker.js") },
          { name: "miniflare:zod", esModule: miniflareWorker("shared/zod.worker.js") },
        ],
      },
    ],
  };
}
