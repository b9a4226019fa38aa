import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { ApiError } from "../errors.ts";
import type { AppAccess } from "../services/apps/apps.ts";
import { addCollaborator, listMembers, type Member, removeCollaborator } from "../services/access/collaborators.ts";
import { appForm, appOrLogin } from "./app-support.tsx";
import { appHref, type DashboardEnv, field } from "./request.ts";
import { AppFrame, frameOf, type Frame, PostForm, Time } from "./layout.tsx";

const AccessView: FC<{ frame: Frame; app: AppAccess; members: Member[] }> = ({ frame, app, members }) => {
  const owner = app.role === "owner";
  return (
    <AppFrame frame={frame} app={app.name} tab="access">
      <h2 id="collaborators">Collaborators</h2>
      <p class="hint">
        Collaborators deploy, scale, read and set config and read logs. Deleting or renaming the app and managing who has access stay with its owner.
      </p>
      <div class="table-wrap">
        <table aria-labelledby="collaborators">
          <thead>
            <tr>
              <th scope="col">Email</th>
              <th scope="col">Role</th>
              <th scope="col" class="optional">
                Since
              </th>
              {owner ? <th scope="col">Remove</th> : null}
            </tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <tr>
                <td>{m.user.email}</td>
                <td>{m.role}</td>
                <td class="optional">
                  <Time at={m.createdAt} />
                </td>
                {owner ? (
                  <td>
                    {m.role === "collaborator" ? (
                      <PostForm action={appHref(app.name, "access/remove")} csrf={frame.csrf} label={`Remove ${m.user.email}`}>
                        <input type="hidden" name="user" value={m.user.email} />
                        <button type="submit" class="secondary" aria-label={`Remove ${m.user.email}`}>
                          Remove
                        </button>
                      </PostForm>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {owner ? (
        <PostForm action={appHref(app.name, "access")} csrf={frame.csrf} label="Add a collaborator">
          <div class="field-row">
            <div>
              <label for="collaborator-email">Email of an account on this platform</label>
              <input id="collaborator-email" name="user" type="email" required autocomplete="off" />
            </div>
            <button type="submit">Add collaborator</button>
          </div>
        </PostForm>
      ) : (
        <p class="hint">Only the app's owner, {app.ownerEmail}, can add or remove collaborators.</p>
      )}
    </AppFrame>
  );
};

/** Adds or removes a collaborator from a form, as the owner, and reports back on the Access tab. */
function changeAccess(change: "add" | "remove") {
  return appForm(
    (app) => appHref(app.name, "access"),
    async ({ c, app, ctx }) => {
      if (app.role !== "owner") throw new ApiError("forbidden", `Only the app's owner, ${app.ownerEmail}, can manage its collaborators.`);
      const user = await field(c, "user");
      const member = change === "add" ? await addCollaborator(ctx, app, user) : await removeCollaborator(ctx, app, user);
      return change === "add" ? `Added ${member.user.email}.` : `Removed ${member.user.email}.`;
    },
  );
}

/** Access: who may work on the app; its owner adds and removes collaborators. */
export const accessPages = new Hono<DashboardEnv>()
  .get("/apps/:name/access", async (c) => {
    const found = await appOrLogin(c);
    if ("redirect" in found) return found.redirect;
    const { app } = found;
    return c.html(<AccessView frame={frameOf(c, `${app.name} · Access`)} app={app} members={await listMembers(c.var.db, app)} />);
  })
  .post("/apps/:name/access", changeAccess("add"))
  .post("/apps/:name/access/remove", changeAccess("remove"));
