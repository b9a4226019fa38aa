import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BuildResult, GitSource } from "../../protocol/build.ts";
import { type Dispatcher, request } from "undici";
import { type HostRequest, refusalReason } from "../control-plane.ts";
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
  /** Git builds: uploads the pushed commit's objects as one pack and its index (`git clone` is served from them). */
  uploadRepository(repo: RepositoryPack, signal: AbortSignal): Promise<void>;
  result(result: BuildResult): Promise<void>;
}

/** A git build's commit and everything it reaches, as git's own pack `pack-<sha>` with its index. */
export interface RepositoryPack {
  name: string;
  pack: string;
  idx: string;
}

/** Sends one request and resolves with its body once the status is known to be 2xx. */
export async function send(
  req: HostRequest,
  method: "GET" | "POST" | "PUT",
  o: { body?: Buffer | Readable; size?: number; type?: string; signal?: AbortSignal } = {},
): Promise<Dispatcher.ResponseData["body"]> {
  const url = new URL(req.url);
  const headers: Record<string, string> = { ...req.headers };
  if (o.type) headers["content-type"] = o.type;
  if (o.size !== undefined) headers["content-length"] = String(o.size);
  // Only the answer's start is timed: a slug upload or a pack download may take long.
  const res = await request(url, {
    method,
    headers,
    body: o.body,
    dispatcher: req.dispatcher,
    signal: o.signal,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: 0,
  });
  if (res.statusCode >= 200 && res.statusCode < 300) return res.body;
  throw new Error(`${method} ${url.pathname} answered ${res.statusCode}: ${refusalReason(await res.body.text())}`);
}

/** The build endpoints of the control plane, authenticated with the host secret. */
export function controlPlaneBuildIO(hostRequest: (path: string) => HostRequest, buildId: string): BuildIO {
  const at = (suffix: string) => hostRequest(buildPath(buildId, suffix));
  const json = (body: unknown) => Buffer.from(JSON.stringify(body));
  return {
    async gitSource(signal) {
      const source = (await (await send(at("/source"), "GET", { signal })).json()) as GitSource;
      if (!Array.isArray(source.packs)) throw new Error("the control plane sent no pack list for this git build");
      return source;
    },
    pack: (seq, signal) => send(at(`/packs/${seq}`), "GET", { signal }),
    async tarball(dest, signal) {
      await pipeline(await send(at("/source"), "GET", { signal }), createWriteStream(dest, { mode: 0o600 }), { signal });
    },
    async output(lines) {
      const body = json({ lines });
      await (await send(at("/output"), "POST", { body, size: body.length, type: "application/json" })).dump();
    },
    async uploadSlug(file, size, processTypes, signal) {
      const query = `?process_types=${encodeURIComponent(JSON.stringify(processTypes))}`;
      const res = await send(at(`/slug${query}`), "PUT", { body: createReadStream(file), size, type: "application/gzip", signal });
      const answer = (await res.json()) as { slug_id?: unknown };
      if (typeof answer.slug_id !== "string") throw new Error("the control plane answered the slug upload without a slug_id");
      return answer.slug_id;
    },
    async uploadRepository(repo, signal) {
      for (const [ext, file] of [
        ["pack", repo.pack],
        ["idx", repo.idx],
      ] as const) {
        const { size } = await fs.stat(file);
        const res = await send(at(`/repository/${repo.name}.${ext}`), "PUT", { body: createReadStream(file), size, type: "application/octet-stream", signal });
        await res.dump();
      }
    },
    async result(result) {
      const body = json(result);
      await (await send(at("/result"), "POST", { body, size: body.length, type: "application/json" })).dump();
    },
  };
}

/** What a build without a control plane produced, as `localBuildIO` records it. */
export interface LocalBuildRecord {
  lines: string[];
  /** Output batches as they were sent, with the time each was sent (for checking liveness). */
  batches: { at: number; lines: string[] }[];
  slug?: { id: string; file: string; processTypes: ProcessTypes };
  /** The pack and index a git build made for cloning. */
  repository?: RepositoryPack;
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
    async uploadRepository(repo) {
      await fs.mkdir(o.slugDir, { recursive: true });
      const kept = { name: repo.name, pack: path.join(o.slugDir, `${repo.name}.pack`), idx: path.join(o.slugDir, `${repo.name}.idx`) };
      await fs.copyFile(repo.pack, kept.pack);
      await fs.copyFile(repo.idx, kept.idx);
      record.repository = kept;
    },
    async result(result) {
      record.result = result;
    },
  };
  return { io, record };
}
