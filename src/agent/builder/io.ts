import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BuildResult, GitSource } from "../../protocol/build.ts";
import type { SlugRequest } from "../slug.ts";
import type { ProcessTypes } from "./procfile.ts";
import { buildPath } from "../../protocol/host.ts";

/** Small requests give up after this long; the build reports the failure. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Everything a build exchanges with the control plane (see src/protocol/build.ts). */
export interface BuildIO {
  /** Git builds: the packs to replay, in push order. */
  gitSource(signal: AbortSignal): Promise<GitSource>;
  /** Git builds: one pack, raw. */
  pack(seq: number, signal: AbortSignal): Promise<Readable>;
  /** Tarball builds: saves the source tar.gz to `dest`. */
  tarball(dest: string, signal: AbortSignal): Promise<void>;
  output(lines: string[]): Promise<void>;
  /** Uploads the slug; resolves to its id. */
  uploadSlug(file: string, size: number, processTypes: ProcessTypes, signal: AbortSignal): Promise<string>;
  result(result: BuildResult): Promise<void>;
}

/** Sends one request and resolves with the response once its status is known to be 2xx. */
function send(
  req: SlugRequest,
  method: string,
  o: { body?: Buffer | Readable; size?: number; type?: string; signal?: AbortSignal } = {},
): Promise<http.IncomingMessage> {
  const url = new URL(req.url);
  const client = url.protocol === "https:" ? https : http;
  const headers: Record<string, string | number> = { ...req.headers };
  if (o.type) headers["content-type"] = o.type;
  if (o.size !== undefined) headers["content-length"] = o.size;
  return new Promise((resolve, reject) => {
    const r = client.request(url, { method, headers, agent: req.agent, signal: o.signal }, (res) => {
      if (res.statusCode! >= 200 && res.statusCode! < 300) return resolve(res);
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text = (text + c).slice(0, 300)));
      res.on("end", () => reject(new Error(`${method} ${url.pathname} answered ${res.statusCode}: ${text}`)));
      res.on("error", reject);
    });
    // Only until the answer starts: a slug upload or a pack download may take long.
    r.setTimeout(REQUEST_TIMEOUT_MS, () => r.destroy(new Error(`${method} ${url.pathname}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)));
    r.on("response", () => r.setTimeout(0));
    r.on("error", reject);
    if (o.body instanceof Readable) pipeline(o.body, r).catch((err: Error) => r.destroy(err));
    else r.end(o.body);
  });
}

async function text(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The build endpoints of the control plane, authenticated with the host secret. */
export function controlPlaneBuildIO(request: (path: string) => SlugRequest, buildId: string): BuildIO {
  const at = (suffix: string) => request(buildPath(buildId, suffix));
  const json = (body: unknown) => Buffer.from(JSON.stringify(body));
  return {
    async gitSource(signal) {
      const source = JSON.parse(await text(await send(at("/source"), "GET", { signal }))) as GitSource;
      if (!Array.isArray(source.packs)) throw new Error("the control plane sent no pack list for this git build");
      return source;
    },
    pack: (seq, signal) => send(at(`/packs/${seq}`), "GET", { signal }),
    async tarball(dest, signal) {
      await pipeline(await send(at("/source"), "GET", { signal }), createWriteStream(dest, { mode: 0o600 }), { signal });
    },
    async output(lines) {
      const body = json({ lines });
      (await send(at("/output"), "POST", { body, size: body.length, type: "application/json" })).resume();
    },
    async uploadSlug(file, size, processTypes, signal) {
      const query = `?process_types=${encodeURIComponent(JSON.stringify(processTypes))}`;
      const res = await send(at(`/slug${query}`), "PUT", { body: createReadStream(file), size, type: "application/gzip", signal });
      const answer = JSON.parse(await text(res)) as { slug_id?: unknown };
      if (typeof answer.slug_id !== "string") throw new Error("the control plane answered the slug upload without a slug_id");
      return answer.slug_id;
    },
    async result(result) {
      const body = json(result);
      (await send(at("/result"), "POST", { body, size: body.length, type: "application/json" })).resume();
    },
  };
}

/** What a build without a control plane produced, as `localBuildIO` records it. */
export interface LocalBuildRecord {
  lines: string[];
  /** Output batches as they were sent, with the time each was sent (for checking liveness). */
  batches: { at: number; lines: string[] }[];
  slug?: { id: string; file: string; processTypes: ProcessTypes };
  result?: BuildResult;
}

/**
 * A BuildIO for building on this host alone (operators trying a buildpack, tests): git
 * packs and the tarball come from local files, slugs are kept in `slugDir`, and output and
 * the result are recorded.
 */
export function localBuildIO(o: { slugDir: string; packs?: string[]; tarball?: string; onLine?: (text: string) => void }): {
  io: BuildIO;
  record: LocalBuildRecord;
} {
  const record: LocalBuildRecord = { lines: [], batches: [] };
  const io: BuildIO = {
    async gitSource() {
      if (!o.packs) throw new Error("no local packs were given for this git build");
      return { packs: await Promise.all(o.packs.map(async (file, seq) => ({ seq, size: (await fs.stat(file)).size }))) };
    },
    async pack(seq) {
      const file = o.packs?.[seq];
      if (!file) throw new Error(`no local pack ${seq}`);
      return createReadStream(file);
    },
    async tarball(dest) {
      if (!o.tarball) throw new Error("no local tarball was given for this build");
      await fs.copyFile(o.tarball, dest);
    },
    async output(lines) {
      record.batches.push({ at: Date.now(), lines });
      record.lines.push(...lines);
      for (const l of lines) o.onLine?.(l);
    },
    async uploadSlug(file, _size, processTypes) {
      const id = randomUUID();
      await fs.mkdir(o.slugDir, { recursive: true });
      const dest = path.join(o.slugDir, `${id}.tgz`);
      await fs.copyFile(file, dest);
      record.slug = { id, file: dest, processTypes };
      return id;
    },
    async result(result) {
      record.result = result;
    },
  };
  return { io, record };
}
