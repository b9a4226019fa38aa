import { Hono, type Context } from "hono";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { GitProtocolError } from "../git/pkt-line.ts";
import { readReceivePackRequest } from "../git/receive-pack.ts";
import { refAdvertisement } from "../git/responses.ts";
import { requireActor } from "../middleware/authenticate.ts";
import { database } from "../middleware/database.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { CLONE_FILE, cloneKey, cloneSource } from "../services/builds/git-clone.ts";
import { DEPLOY_REFS, receivePush } from "../services/builds/git-push.ts";
import { maxSourceBytes } from "../services/builds/sources.ts";

/** `<app>.git` in the first path segment, as `heroku create` writes the remote. */
const REPO = "/:repo{[^/]+\\.git}";

/** The app a request's repository path names, if the Basic credentials (`heroku:<token>`) are its owner's or a collaborator's. */
async function ownedApp(c: Context<AppEnv>) {
  const actor = await requireActor(c);
  const app = await findAppForActor(c.var.db, actor, c.req.param("repo")!.slice(0, -".git".length));
  return { actor, app };
}

/** Git shows a plain-text error body to the pusher as `remote: <message>`. */
function gitError(c: Context<AppEnv>, status: 400 | 401 | 403 | 404 | 413 | 415, message: string) {
  if (status === 401) c.header("WWW-Authenticate", 'Basic realm="dynoplane"');
  return c.text(`${message}\n`, status, { "Cache-Control": "no-cache" });
}

/** The clone an app is served from, or git's plain-text refusal. */
async function cloneOf(c: Context<AppEnv>) {
  const { app } = await ownedApp(c);
  const source = await cloneSource(c.var.db, app.id);
  return { app, source };
}

const noClone = (c: Context<AppEnv>, app: string) => gitError(c, 404, `${app} has no deployed git commit to clone yet: push one with git push heroku main.`);

/**
 * Git over HTTP. Pushing is smart HTTP's receive side: `git push heroku main` deploys;
 * pushes are streamed (never buffered whole) and limited to SOURCE_MAX_MB. Fetching and
 * cloning (`heroku git:clone`) are git's dumb HTTP protocol over the last deployed commit,
 * which its build stored as one pack with its index: `info/refs` without a smart service,
 * `HEAD`, `objects/info/packs` and the pack files. The app's owner and collaborators only.
 */
export const gitRoutes = new Hono<AppEnv>()
  .get(`${REPO}/info/refs`, database, async (c) => {
    if (c.req.query("service") !== "git-receive-pack") {
      // No smart upload-pack: a plain answer makes git fetch the dumb way.
      const { app, source } = await cloneOf(c);
      if (!source) return noClone(c, app.name);
      return c.text(`${source.commit}\trefs/heads/main\n`, 200, { "Cache-Control": "no-cache" });
    }
    const { app } = await ownedApp(c);
    const refs = app.repoHead ? DEPLOY_REFS.map((name) => ({ id: app.repoHead!, name })) : [];
    return c.body(refAdvertisement(refs), 200, { "Content-Type": "application/x-git-receive-pack-advertisement", "Cache-Control": "no-cache" });
  })
  .post(`${REPO}/git-receive-pack`, database, async (c) => {
    const { actor, app } = await ownedApp(c);
    if (c.req.header("Content-Type") !== "application/x-git-receive-pack-request") {
      return gitError(c, 415, "Expected a git-receive-pack request.");
    }
    const maxBytes = maxSourceBytes(c.env);
    if (Number(c.req.header("Content-Length") ?? 0) > maxBytes) {
      return gitError(c, 413, `Push rejected: pushes may be at most ${maxBytes / 1024 / 1024} MB.`);
    }
    let body = c.req.raw.body ?? new ReadableStream<Uint8Array>({ start: (ctl) => ctl.close() });
    if (/^(x-)?gzip$/i.test(c.req.header("Content-Encoding") ?? "")) body = body.pipeThrough(new DecompressionStream("gzip"));
    const request = await readReceivePackRequest(body);
    const headers = { "Content-Type": "application/x-git-receive-pack-result", "Cache-Control": "no-cache" };
    // Git's 4-byte probe before a large push only needs an answer.
    if (!request.commands.length) return c.body(null, 200, headers);
    const stream = await receivePush({ db: c.var.db, env: c.env, app, actor, maxBytes }, request);
    return c.body(stream, 200, headers);
  })
  .get(`${REPO}/HEAD`, database, async (c) => {
    const { app, source } = await cloneOf(c);
    if (!source) return noClone(c, app.name);
    return c.text("ref: refs/heads/main\n", 200, { "Cache-Control": "no-cache" });
  })
  .get(`${REPO}/objects/info/packs`, database, async (c) => {
    const { app, source } = await cloneOf(c);
    if (!source) return noClone(c, app.name);
    return c.text(`P ${source.pack}.pack\n\n`, 200, { "Cache-Control": "no-cache" });
  })
  .get(`${REPO}/objects/pack/:file`, database, async (c) => {
    const { app, source } = await cloneOf(c);
    const file = c.req.param("file");
    const m = CLONE_FILE.exec(file);
    if (!source || !m || m[1] !== source.pack) return gitError(c, 404, `${app.name} has no such pack.`);
    const object = await c.env.BLOBS.get(cloneKey(source.build, file));
    if (!object) return gitError(c, 404, `${app.name} has no such pack.`);
    const type = m[2] === "pack" ? "application/x-git-packed-objects" : "application/x-git-packed-objects-toc";
    return new Response(object.body, { headers: { "Content-Type": type, "Content-Length": String(object.size), "Cache-Control": "no-cache" } });
  })
  // Loose objects and alternates: there are none, everything is in the pack.
  .get(`${REPO}/objects/*`, database, async (c) => {
    const { app } = await ownedApp(c);
    return gitError(c, 404, `${app.name} keeps its objects in one pack.`);
  })
  .onError((err, c) => {
    if (err instanceof GitProtocolError) return gitError(c, 400, err.message);
    if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
      return gitError(c, err.status, err.status === 401 ? "Invalid credentials: push with your API token as the password (heroku auth:token)." : err.message);
    }
    console.error(JSON.stringify({ request_id: c.var.requestId, error: String(err), stack: (err as Error).stack }));
    return c.text("An internal error occurred. Please try again later.\n", 500);
  });
