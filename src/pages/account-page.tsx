import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { clearCookie, SESSION_COOKIE } from "../auth/browser-cookies.ts";
import { redactedToken } from "../auth/tokens.ts";
import type { OAuthAuthorizationRow } from "../db/schema/index.ts";
import { ApiError } from "../errors.ts";
import type { Actor } from "../env.ts";
import type { Database } from "../db/client.ts";
import { createAuthorization, getAuthorization } from "../services/authorizations.ts";
import { countBrowserSessions, revokeAllBrowserSessions } from "../services/browser-sessions.ts";
import { href, redirectWith, sessionOrLogin, type DashboardEnv } from "./context.ts";
import { Fact, Layout, PostForm, Time, frameOf, type Frame } from "./layout.tsx";

/** The account's API key row, or null when it has none (keys are optional until generated). */
async function apiKeyOf(db: Database, actor: Actor): Promise<OAuthAuthorizationRow | null> {
  try {
    return await getAuthorization(db, actor, "~");
  } catch (err) {
    if (err instanceof ApiError && err.id === "not_found") return null;
    throw err;
  }
}

interface AccountProps {
  frame: Frame;
  apiKey: OAuthAuthorizationRow | null;
  /** A key just generated: the only time it is ever shown. */
  fresh?: string;
  sessions: number;
}

const AccountView: FC<AccountProps> = ({ frame, apiKey, fresh, sessions }) => (
  <Layout frame={frame} current="account">
    <h1>Account</h1>
    <section class="panel" aria-labelledby="profile">
      <h2 id="profile">Profile</h2>
      <dl>
        <Fact term="Email">{frame.email}</Fact>
      </dl>
    </section>
    <section class="panel spaced" aria-labelledby="api-key">
      <h2 id="api-key">API key</h2>
      {fresh ? (
        <div role="status">
          <p>
            <strong>Your new API key, shown once.</strong> Copy it now: dynoplane keeps only a hash of it and cannot show it again.
          </p>
          <p class="secret" id="new-api-key">
            {fresh}
          </p>
        </div>
      ) : null}
      {apiKey ? (
        <dl>
          <Fact term="Current key">
            <code>{redactedToken(apiKey.tokenPrefix, apiKey.tokenSuffix)}</code>
          </Fact>
          <Fact term="Created">
            <Time at={apiKey.createdAt} />
          </Fact>
        </dl>
      ) : (
        <p>You have no API key yet.</p>
      )}
      <p class="hint">
        Use it as <code>HEROKU_API_KEY</code> for scripts. Keys are stored as hashes, so a key is visible only right after it is generated. Regenerating
        replaces the old key, which stops working at once.
      </p>
      <PostForm action={href("/account/api-key")} csrf={frame.csrf}>
        <div class="actions">
          <button type="submit">{apiKey ? "Regenerate API key" : "Generate API key"}</button>
        </div>
      </PostForm>
    </section>
    <section class="panel spaced" aria-labelledby="browsers">
      <h2 id="browsers">Browser sessions</h2>
      <p>
        Signed in on {sessions} {sessions === 1 ? "browser" : "browsers"}, this one included.
      </p>
      <PostForm action={href("/account/sessions/revoke")} csrf={frame.csrf}>
        <button type="submit" class="secondary">
          Sign out everywhere
        </button>
      </PostForm>
    </section>
  </Layout>
);

/** The account page: the API key (regenerate, shown once) and browser sessions. */
export const accountPages = new Hono<DashboardEnv>()
  .get("/account", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const { actor } = auth.session;
    const [apiKey, sessions] = [await apiKeyOf(c.var.db, actor), await countBrowserSessions(c.var.db, actor.accountId)];
    return c.html(<AccountView frame={frameOf(c, "Account")} apiKey={apiKey} sessions={sessions} />);
  })
  .post("/account/api-key", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const { actor } = auth.session;
    const { row, token } = await createAuthorization(
      c.var.db,
      actor.accountId,
      { description: "API key", isDefault: true },
      { email: actor.email, requestId: c.var.requestId },
    );
    const sessions = await countBrowserSessions(c.var.db, actor.accountId);
    // Rendered, not redirected: the key exists in clear only in this response.
    c.header("Cache-Control", "no-store");
    return c.html(<AccountView frame={frameOf(c, "Account")} apiKey={row} fresh={token} sessions={sessions} />);
  })
  .post("/account/sessions/revoke", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const n = await revokeAllBrowserSessions(c.var.db, auth.session.actor, c.var.requestId);
    clearCookie(c, SESSION_COOKIE);
    return redirectWith(c, href("/login"), { kind: "notice", text: `Signed out of ${n} ${n === 1 ? "browser" : "browsers"}.` });
  });
