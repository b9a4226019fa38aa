import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { clearCookie, SESSION_COOKIE } from "../auth/browser-cookies.ts";
import { redactedToken } from "../auth/tokens.ts";
import type { OAuthAuthorizationRow } from "../db/schema/index.ts";
import { ApiError } from "../errors.ts";
import type { Actor } from "../env.ts";
import type { Database } from "../db/client.ts";
import { createAuthorization, getAuthorization } from "../services/access/authorizations.ts";
import { countBrowserSessions, revokeAllBrowserSessions } from "../services/access/browser-sessions.ts";
import { getAccount } from "../services/access/accounts.ts";
import { ecoSummary, type EcoSummary } from "../services/eco/keep-alive.ts";
import { bedtimeText, pingText, REASONS } from "./keep-alive-section.tsx";
import { appHref, dashboardForm, href, sessionOrLogin, type DashboardEnv } from "./request.ts";
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

const hm = (seconds: number) => {
  const minutes = Math.max(0, Math.floor(seconds / 60));
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
};

/** The account's eco dyno hours: the pool, this month's use, and where the month is heading. */
const EcoHours: FC<{ eco: EcoSummary }> = ({ eco }) => {
  const p = eco.projection;
  const verdict = (s: number) => (s > eco.poolS ? `${hm(s)}: more than the pool` : hm(s));
  return (
    <section class="panel spaced" aria-labelledby="eco-hours">
      <h2 id="eco-hours">Eco dyno hours</h2>
      {eco.exhaustedUntil ? (
        <p role="alert">
          This month's hours are used up: your eco dynos sleep until <Time at={eco.exhaustedUntil} />.
        </p>
      ) : null}
      <dl>
        <Fact term="Pool this month">{hm(eco.poolS)}</Fact>
        <Fact term="Used">{hm(eco.usedS)}</Fact>
        <Fact term="Left">{hm(eco.poolS - eco.usedS)}</Fact>
        <Fact term="By the month's end, with keep-alive as planned">{verdict(p.plannedS)}</Fact>
        <Fact term="... if keep-alive pinged around the clock">{verdict(p.roundTheClockS)}</Fact>
        <Fact term="... without keep-alive (other eco apps at this month's pace)">{verdict(p.withoutKeepAliveS)}</Fact>
      </dl>
      {eco.apps.length ? (
        <div class="table-wrap">
          <table>
            <caption class="muted">apps kept awake (each may be up {hm(eco.awakeSPerDay)} a day for the rest of the month)</caption>
            <thead>
              <tr>
                <th scope="col">App</th>
                <th scope="col">Now</th>
                <th scope="col">Bedtime (UTC)</th>
                <th scope="col">Last ping</th>
              </tr>
            </thead>
            <tbody>
              {eco.apps.map((a) => (
                <tr>
                  <td>
                    <a href={appHref(a.name, "resources")}>{a.name}</a>
                  </td>
                  <td>{REASONS[a.reason]}</td>
                  <td>{bedtimeText(a.bedtime)}</td>
                  <td>{pingText(a)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No app has keep-alive on. Turn it on in an app's Resources tab, or with heroku features:enable keep-alive.</p>
      )}
    </section>
  );
};

interface AccountProps {
  frame: Frame;
  eco: EcoSummary;
  apiKey: OAuthAuthorizationRow | null;
  /** A key just generated: the only time it is ever shown. */
  fresh?: string;
  sessions: number;
  /** An operator of the platform: the page links to the fleet. */
  operator: boolean;
}

const AccountView: FC<AccountProps> = ({ frame, eco, apiKey, fresh, sessions, operator }) => (
  <Layout frame={frame} current="account">
    <h1>Account</h1>
    <section class="panel" aria-labelledby="profile">
      <h2 id="profile">Profile</h2>
      <dl>
        <Fact term="Email">{frame.email}</Fact>
      </dl>
      {operator ? (
        <p>
          You operate this platform: <a href={href("/operator/hosts")}>the fleet</a> shows its hosts, and drains them.
        </p>
      ) : null}
    </section>
    <EcoHours eco={eco} />
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
    const account = await getAccount(c.var.db, actor.accountId);
    const eco = await ecoSummary(c.var.db, c.env, account, new Date());
    return c.html(<AccountView frame={frameOf(c, "Account")} eco={eco} apiKey={apiKey} sessions={sessions} operator={account.operator} />);
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
    const account = await getAccount(c.var.db, actor.accountId);
    const eco = await ecoSummary(c.var.db, c.env, account, new Date());
    // Rendered, not redirected: the key exists in clear only in this response.
    c.header("Cache-Control", "no-store");
    return c.html(<AccountView frame={frameOf(c, "Account")} eco={eco} apiKey={row} fresh={token} sessions={sessions} operator={account.operator} />);
  })
  .post(
    "/account/sessions/revoke",
    dashboardForm(
      sessionOrLogin,
      () => href("/account"),
      async ({ c, session }) => {
        const n = await revokeAllBrowserSessions(c.var.db, session.actor, c.var.requestId);
        clearCookie(c, SESSION_COOKIE);
        return { to: href("/login"), text: `Signed out of ${n} ${n === 1 ? "browser" : "browsers"}.` };
      },
    ),
  );
