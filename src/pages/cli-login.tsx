import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { hostnameOf, looksLikeBrowserId } from "../auth/login-handoff.ts";
import type { LoginAttemptRow } from "../db/schema/index.ts";
import { decideAttempt, findAttemptForBrowser, isOpen } from "../services/access/login-attempts.ts";
import { field, href, sessionOrLogin, type DashboardEnv } from "./request.ts";
import { Card, PostForm, frameOf, type Frame } from "./layout.tsx";

const GONE = "This login link has expired or was already used. Run heroku login again to get a new one.";

const Question: FC<{ frame: Frame; attempt: LoginAttemptRow; action: string }> = ({ frame, attempt, action }) => {
  const host = hostnameOf(attempt.description);
  return (
    <Card frame={frame} heading={host ? `Log in to the CLI on ${host}?` : "Log in to the CLI?"}>
      <p>
        A <code>heroku login</code> started{" "}
        {host ? (
          <>
            on <strong>{host}</strong>
          </>
        ) : (
          "from a terminal"
        )}{" "}
        is asking for an API token for <strong>{frame.email}</strong>. The token is only handed to the terminal that asked.
      </p>
      <p class="muted">Request: {attempt.description || "Heroku CLI login"}</p>
      <p>Approve only if you started this login yourself.</p>
      <div class="actions">
        <PostForm action={action} csrf={frame.csrf} class="inline">
          <input type="hidden" name="decision" value="approve" />
          <button type="submit">Approve</button>
        </PostForm>
        <PostForm action={action} csrf={frame.csrf} class="inline">
          <input type="hidden" name="decision" value="deny" />
          <button type="submit" class="secondary">
            Deny
          </button>
        </PostForm>
      </div>
      <p class="hint">Not {frame.email}? Sign out from the menu above and sign in with the right account.</p>
    </Card>
  );
};

const Outcome: FC<{ frame: Frame; heading: string; text: string }> = ({ frame, heading, text }) => (
  <Card frame={frame} heading={heading}>
    <p role="status">{text}</p>
    <p>
      <a href={href("/apps")}>Go to your apps</a>
    </p>
  </Card>
);

/**
 * The browser half of `heroku login`: the link the CLI opens. Signing in (or up) comes
 * first; then the person approves or denies, and the waiting CLI learns the answer.
 */
export const cliLoginPages = new Hono<DashboardEnv>()
  .get("/cli-login/:id", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const id = c.req.param("id");
    const attempt = looksLikeBrowserId(id) ? await findAttemptForBrowser(c.var.db, id) : null;
    if (!attempt || !isOpen(attempt)) return c.html(<Outcome frame={frameOf(c, "CLI login")} heading="Link expired" text={GONE} />, 410);
    return c.html(<Question frame={frameOf(c, "Log in to the CLI")} attempt={attempt} action={href(`/cli-login/${id}`)} />);
  })
  .post("/cli-login/:id", async (c) => {
    const auth = sessionOrLogin(c);
    if ("redirect" in auth) return auth.redirect;
    const id = c.req.param("id");
    const decision = await field(c, "decision");
    if (decision !== "approve" && decision !== "deny")
      return c.html(<Outcome frame={frameOf(c, "CLI login")} heading="Nothing decided" text="Choose Approve or Deny." />, 422);
    const approve = decision === "approve";
    const attempt = looksLikeBrowserId(id) ? await decideAttempt(c.var.db, auth.session.actor, id, approve, c.var.requestId) : null;
    if (!attempt) return c.html(<Outcome frame={frameOf(c, "CLI login")} heading="Link expired" text={GONE} />, 410);
    return approve
      ? c.html(
          <Outcome
            frame={frameOf(c, "CLI login approved")}
            heading="CLI login approved"
            text="You are logged in. You can close this window and return to your terminal."
          />,
        )
      : c.html(
          <Outcome frame={frameOf(c, "CLI login denied")} heading="CLI login denied" text="The login was denied; the terminal that asked gets no token." />,
        );
  });
