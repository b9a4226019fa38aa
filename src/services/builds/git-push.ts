import type { Database } from "../../db/client.ts";
import type { AppRow } from "../../db/schema/index.ts";
import type { Actor, Bindings } from "../../env.ts";
import { PackError, TooLargeError } from "../../git/pack.ts";
import { concatBytes, GitProtocolError } from "../../git/pkt-line.ts";
import { ZERO_ID, type ReceivePackRequest, type RefCommand } from "../../git/receive-pack.ts";
import { finalReport, progressLines, reportStatus, sideband, type RefStatus } from "../../git/responses.ts";
import { gitUrl, publicUrls } from "../../lib/urls.ts";
import { buildChannel, startBuild } from "./builds.ts";
import { storePack } from "./git-packs.ts";

/** The branches a push deploys, as on Heroku. */
export const DEPLOY_REFS = ["refs/heads/main", "refs/heads/master"];
/** What a push to any other branch (or a tag) hears, in Heroku's words: it is accepted and not built. */
export const SKIPPED_BUILD = "Pushed to non-master branch, skipping build.";
/** A push response with nothing to say for this long gets a keep-alive packet. */
const KEEP_ALIVE_MS = 15_000;

/**
 * Which command of a push deploys, which are accepted without a build (other branches and
 * tags, as Heroku takes them), and why each of the rest is refused. Pure.
 */
export function planPush(commands: RefCommand[]): { deploy: RefCommand | null; skipped: string[]; refused: Map<string, string> } {
  let deploy: RefCommand | null = null;
  const skipped: string[] = [];
  const refused = new Map<string, string>();
  for (const cmd of commands) {
    if (!DEPLOY_REFS.includes(cmd.ref)) skipped.push(cmd.ref);
    else if (cmd.newId === ZERO_ID) refused.set(cmd.ref, "deleting the deployed branch is not allowed");
    else if (deploy) refused.set(cmd.ref, `only one of main or master is deployed per push (${deploy.ref} was)`);
    else deploy = cmd;
  }
  return { deploy, skipped, refused };
}

/**
 * Reads and drops the rest of a refused push, so git gets its report instead of a broken
 * connection. Cloudflare's own request size limit bounds how much that can be.
 */
async function drain(stream: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!stream) return;
  const reader = stream.getReader();
  try {
    while (!(await reader.read()).done);
  } catch {
    // The stream already failed; there is nothing left to read.
  } finally {
    reader.releaseLock();
  }
}

const statuses = (commands: RefCommand[], refused: Map<string, string>, deployError?: string): RefStatus[] =>
  commands.map((c) => ({ ref: c.ref, error: refused.get(c.ref) ?? deployError }));

const once = (bytes: Uint8Array) => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(bytes), c.close()) });

/** What handling one push needs. */
export interface IncomingPush {
  db: Database;
  env: Bindings;
  app: AppRow;
  actor: Actor;
  maxBytes: number;
}

/**
 * Handles a push after its commands were read: stores the pack of a main/master push,
 * starts its build, and answers with a stream that relays the build's output live and
 * ends with the report-status. Nothing changes for a push whose pack is refused.
 */
export async function receivePush(push: IncomingPush, request: ReceivePackRequest): Promise<ReadableStream<Uint8Array>> {
  const useSideband = request.capabilities.includes("side-band-64k");
  const { deploy, skipped, refused } = planPush(request.commands);
  if (!deploy) {
    // Nothing to build: the objects of other branches are not kept (only what main or
    // master deploys is, and only that is advertised), so the next push sends them again.
    await drain(request.pack);
    const report = finalReport(useSideband, reportStatus(null, statuses(request.commands, refused)));
    return once(useSideband && skipped.length ? concatBytes([progressLines([SKIPPED_BUILD]), report]) : report);
  }
  let pack: Awaited<ReturnType<typeof storePack>>;
  try {
    if (!request.pack) throw new PackError("the push carried no pack");
    pack = await storePack(push.db, push.env.BLOBS, push.app, deploy.newId, request.pack, push.maxBytes);
  } catch (err) {
    if (!(err instanceof PackError || err instanceof TooLargeError || err instanceof GitProtocolError)) throw err;
    await drain(request.pack);
    const why = progressLines(["", ` !     Push rejected: ${err.message}.`, " !     Nothing was stored or deployed.", ""]);
    const report = reportStatus(err.message, statuses(request.commands, refused, "unpacker error"));
    return once(useSideband ? concatBytes([why, finalReport(true, report)]) : report);
  }
  const build = await startBuild(push.db, push.env, push.app, push.actor, {
    kind: "git",
    commit: deploy.newId,
    sourceBlobKey: pack.blobKey,
    sourceUrl: gitUrl(publicUrls(push.env), push.app.name),
    sourceVersion: deploy.newId,
    packId: pack.id,
    buildpacks: push.app.buildpacks,
  });
  return relayBuild(push.env, build.id, useSideband, (ok) => statuses(request.commands, refused, ok ? undefined : "build failed"));
}

/**
 * The push response while a build runs: each output line as soon as it is written (on
 * side-band channel 2, which git prints as `remote: ...`), then the report.
 */
function relayBuild(env: Bindings, buildId: string, useSideband: boolean, report: (ok: boolean) => RefStatus[]): ReadableStream<Uint8Array> {
  const channel = buildChannel(env, buildId);
  let next = 0;
  return new ReadableStream<Uint8Array>({
    // Each pull enqueues something (a pull that enqueues nothing is not repeated by the stream).
    async pull(controller) {
      for (;;) {
        const chunk = await channel.read(next, KEEP_ALIVE_MS);
        next = chunk.next;
        if (useSideband && chunk.lines.length) controller.enqueue(progressLines(chunk.lines));
        else if (useSideband && !chunk.outcome) controller.enqueue(sideband(1, new Uint8Array(0)));
        if (chunk.outcome) {
          controller.enqueue(finalReport(useSideband, reportStatus(null, report(chunk.outcome.status === "succeeded"))));
          return controller.close();
        }
        if (useSideband) return;
      }
    },
  });
}
