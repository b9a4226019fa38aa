import type { FC } from "hono/jsx";
import type { ReleaseRow } from "../db/schema/index.ts";
import { type AppAccess, findAppForActor } from "../services/apps/apps.ts";
import type { BrowserSession } from "../services/access/browser-sessions.ts";
import { requestContext, type ServiceContext } from "../services/context.ts";
import { type DashboardCall, dashboardForm, type FormDone, sessionOrLogin } from "./request.ts";
import { Time } from "./layout.tsx";

/**
 * The signed-in person and the app the URL names, through the same owner-scoped lookup
 * as the API (someone else's app is a 403, an unknown one a 404, both rendered by the
 * dashboard's error page); or the redirect to sign in.
 */
export async function appOrLogin(c: DashboardCall): Promise<{ session: BrowserSession; app: AppAccess } | { redirect: Response }> {
  const auth = sessionOrLogin(c);
  if ("redirect" in auth) return auth;
  const app = await findAppForActor(c.var.db, auth.session.actor, c.req.param("name") ?? "");
  return { session: auth.session, app };
}

/** What an app form's change is given: the request, the app, the service context of the person signed in. */
export interface FormInput {
  c: DashboardCall;
  app: AppAccess;
  ctx: ServiceContext;
  session: BrowserSession;
}

/** The dashboard's form shape (see dashboardForm) for a form about the app the URL names. */
export function appForm(back: (app: AppAccess) => string, change: (input: FormInput) => Promise<FormDone>) {
  return dashboardForm(
    appOrLogin,
    ({ app }) => back(app),
    ({ c, app, session }) => change({ c, app, session, ctx: requestContext(c, session.actor) }),
  );
}

/** A dyno state as a labelled badge (colour is never the only signal: the word is shown). */
export const StateBadge: FC<{ state: string }> = ({ state }) => <span class={`state state-${state}`}>{state}</span>;

/** A table of releases, newest first; `actions` adds a cell per release (rollback). */
export const ReleasesTable: FC<{ releases: ReleaseRow[]; current: number | null; actions?: (r: ReleaseRow) => unknown }> = ({ releases, current, actions }) => (
  <div class="table-wrap">
    <table>
      <thead>
        <tr>
          <th scope="col">Version</th>
          <th scope="col">Description</th>
          <th scope="col" class="optional">
            By
          </th>
          <th scope="col">When</th>
          {actions ? <th scope="col">Action</th> : null}
        </tr>
      </thead>
      <tbody>
        {releases.map((r) => (
          <tr>
            <td>
              v{r.version} {r.version === current ? <span class="state state-up">current</span> : null}
              {r.status !== "succeeded" ? <span class="state state-crashed">{r.status}</span> : null}
            </td>
            <td>{r.description}</td>
            <td class="optional">{r.userEmail}</td>
            <td>
              <Time at={r.createdAt} />
            </td>
            {actions ? <td>{actions(r) as never}</td> : null}
          </tr>
        ))}
      </tbody>
    </table>
  </div>
);
