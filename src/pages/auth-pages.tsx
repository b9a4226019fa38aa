import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { clearCookie, PRESESSION_COOKIE, SESSION_COOKIE, SESSION_TTL_S, writeCookie } from "../auth/browser-cookies.ts";
import { ApiError } from "../errors.ts";
import { authenticatePassword, createAccount, MIN_PASSWORD_LENGTH } from "../services/access/accounts.ts";
import { createBrowserSession, revokeBrowserSession } from "../services/access/browser-sessions.ts";
import { clearFailures, clientAddressOf, isThrottled, recordFailure, throttleKeys } from "../services/access/sign-in-throttle.ts";
import { field, href, rawField, redirectWith, safeNext, type DashboardCall, type DashboardEnv } from "./request.ts";
import { Card, PostForm, frameOf, type Frame } from "./layout.tsx";

/** The same words for a wrong password and an unknown email, so a failure reveals neither. */
const BAD_CREDENTIALS = "That email and password do not match an account.";
const THROTTLED = "Too many failed sign-in attempts. Wait 15 minutes and try again.";

const withNext = (path: string, next: string | null) => (next ? `${path}?next=${encodeURIComponent(next)}` : path);

const Errors: FC<{ error?: string }> = ({ error }) =>
  error ? (
    <p class="flash flash-error" role="alert" id="form-error">
      {error}
    </p>
  ) : null;

const SignInPage: FC<{ frame: Frame; email?: string; next: string | null; error?: string }> = (p) => (
  <Card frame={p.frame} heading="Sign in to dynoplane">
    <Errors error={p.error} />
    {p.next?.startsWith(href("/cli-login/")) ? <p>Sign in to finish logging in the heroku CLI.</p> : null}
    <PostForm action={href("/login")} csrf={p.frame.csrf}>
      {p.next ? <input type="hidden" name="next" value={p.next} /> : null}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value={p.email ?? ""} autofocus />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <div class="actions">
        <button type="submit">Sign in</button>
      </div>
    </PostForm>
    <p>
      New here? <a href={withNext(href("/signup"), p.next)}>Create an account</a>
    </p>
  </Card>
);

const SignUpPage: FC<{ frame: Frame; email?: string; next: string | null; error?: string }> = (p) => (
  <Card frame={p.frame} heading="Create your dynoplane account">
    <Errors error={p.error} />
    {p.next?.startsWith(href("/cli-login/")) ? <p>Create an account to finish logging in the heroku CLI.</p> : null}
    <PostForm action={href("/signup")} csrf={p.frame.csrf}>
      {p.next ? <input type="hidden" name="next" value={p.next} /> : null}
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="email" required value={p.email ?? ""} autofocus />
      <label for="password">Password</label>
      <input
        id="password"
        name="password"
        type="password"
        autocomplete="new-password"
        required
        minlength={MIN_PASSWORD_LENGTH}
        aria-describedby="password-hint"
      />
      <p class="hint" id="password-hint">
        At least {MIN_PASSWORD_LENGTH} characters.
      </p>
      <div class="actions">
        <button type="submit">Create account</button>
      </div>
    </PostForm>
    <p>
      Already have an account? <a href={withNext(href("/login"), p.next)}>Sign in</a>
    </p>
  </Card>
);

/** Signs the browser in as `account`: a fresh session (never a reused id), then on to `next`. */
async function startSession(c: DashboardCall, account: { id: string; email: string }, next: string | null) {
  const session = await createBrowserSession(c.var.db, account, {
    userAgent: c.req.header("User-Agent"),
    clientAddress: clientAddressOf(c.req.raw, c.env.CLIENT_ADDRESS_HEADER),
    requestId: c.var.requestId,
  });
  await writeCookie(c, c.env.COMMAND_SIGNING_KEY, SESSION_COOKIE, session.secret, SESSION_TTL_S);
  clearCookie(c, PRESESSION_COOKIE);
  return c.redirect(next ?? href("/apps"), 303);
}

/** Sign in, sign up and sign out. Sign-in failures are counted per (account, address) pair and per address. */
export const authPages = new Hono<DashboardEnv>()
  .get("/login", (c) => {
    const next = safeNext(c.req.query("next"));
    if (c.var.session) return c.redirect(next ?? href("/apps"), 303);
    return c.html(<SignInPage frame={frameOf(c, "Sign in")} next={next} />);
  })
  .post("/login", async (c) => {
    const [email, password, next] = [await field(c, "email"), await rawField(c, "password"), safeNext(await field(c, "next"))];
    const keys = await throttleKeys(email, clientAddressOf(c.req.raw, c.env.CLIENT_ADDRESS_HEADER));
    const page = (error: string, status: 401 | 429) => c.html(<SignInPage frame={frameOf(c, "Sign in")} email={email} next={next} error={error} />, status);
    if (await isThrottled(c.var.db, [keys.pair, keys.address])) return page(THROTTLED, 429);
    const account = email && password ? await authenticatePassword(c.var.db, email, password) : null;
    if (!account) {
      await recordFailure(c.var.db, [keys.pair, keys.address]);
      return page(BAD_CREDENTIALS, 401);
    }
    await clearFailures(c.var.db, keys.pair);
    return startSession(c, account, next);
  })
  .get("/signup", (c) => {
    const next = safeNext(c.req.query("next"));
    if (c.var.session) return c.redirect(next ?? href("/apps"), 303);
    return c.html(<SignUpPage frame={frameOf(c, "Sign up")} next={next} />);
  })
  .post("/signup", async (c) => {
    const [email, password, next] = [await field(c, "email"), await rawField(c, "password"), safeNext(await field(c, "next"))];
    const keys = await throttleKeys(email, clientAddressOf(c.req.raw, c.env.CLIENT_ADDRESS_HEADER));
    const page = (error: string, status: 422 | 429) => c.html(<SignUpPage frame={frameOf(c, "Sign up")} email={email} next={next} error={error} />, status);
    // Sign-up tells whether an email is taken, so it shares the address's failure budget.
    if (await isThrottled(c.var.db, [keys.address])) return page(THROTTLED, 429);
    try {
      const account = await createAccount(c.var.db, { email, password });
      return startSession(c, account, next);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      await recordFailure(c.var.db, [keys.address]);
      return page(err.message, 422);
    }
  })
  .post("/logout", async (c) => {
    if (c.var.session) await revokeBrowserSession(c.var.db, c.var.session, c.var.requestId);
    clearCookie(c, SESSION_COOKIE);
    return redirectWith(c, href("/login"), { kind: "notice", text: "You are signed out." });
  });
