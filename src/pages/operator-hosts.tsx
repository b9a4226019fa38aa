import { Hono } from "hono";
import type { FC } from "hono/jsx";
import { ApiError } from "../errors.ts";
import { getAccount } from "../services/access/accounts.ts";
import { drainHost, type HostView, listHosts, undrainHost } from "../services/fleet/fleet.ts";
import { type DashboardCall, type DashboardEnv, dashboardForm, href, sessionOrLogin } from "./request.ts";
import { type Frame, frameOf, Layout, PostForm, Time } from "./layout.tsx";

/** Where the fleet page is. */
const FLEET = href("/operator/hosts");

/**
 * The signed-in account when it is an operator; anyone else gets the dashboard's 404, so the
 * page's existence is not news to them.
 */
async function operatorOrNotFound(c: DashboardCall) {
  const auth = sessionOrLogin(c);
  if ("redirect" in auth) return auth;
  const account = await getAccount(c.var.db, auth.session.actor.accountId);
  if (!account.operator) throw new ApiError("not_found", "There is no dashboard page at this address.");
  return { session: auth.session, account };
}

const StateWord: FC<{ state: HostView["state"] }> = ({ state }) => (
  <span class={`state state-${state === "up" ? "up" : state === "draining" ? "starting" : "crashed"}`}>{state}</span>
);

const FleetView: FC<{ frame: Frame; hosts: HostView[] }> = ({ frame, hosts }) => (
  <Layout frame={frame}>
    <h1>Fleet</h1>
    <p class="hint">
      The hosts that run dynos. Draining a host stops new dynos going there and moves its dynos to other hosts one at a time, each new one up before the old one
      stops; remove an empty host with <code>dynoplane hosts:remove NAME</code>.
    </p>
    {hosts.length ? (
      <div class="table-wrap">
        <table id="hosts-table">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">State</th>
              <th scope="col">Address</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">Capacity</th>
              <th scope="col">Committed</th>
              <th scope="col">Dynos</th>
              <th scope="col">Agent</th>
              <th scope="col">Action</th>
            </tr>
          </thead>
          <tbody>
            {hosts.map((h) => (
              <tr data-host={h.name}>
                <td>{h.name}</td>
                <td>
                  <StateWord state={h.state} />
                </td>
                <td class="mono">{h.url ?? "–"}</td>
                <td>{h.lastHeartbeatAt ? <Time at={h.lastHeartbeatAt} /> : "never"}</td>
                <td>{h.capacityMb} MB</td>
                <td>
                  {h.committedMb} MB ({h.capacityMb ? Math.round((h.committedMb / h.capacityMb) * 100) : 0}%)
                </td>
                <td>{h.dynos}</td>
                <td>{h.agentVersion ?? "–"}</td>
                <td>
                  <PostForm
                    action={`${FLEET}/${encodeURIComponent(h.name)}/${h.drainingSince ? "undrain" : "drain"}`}
                    csrf={frame.csrf}
                    label={`${h.drainingSince ? "Undrain" : "Drain"} ${h.name}`}
                  >
                    <button type="submit" class="secondary">
                      {h.drainingSince ? "Undrain" : "Drain"}
                    </button>
                  </PostForm>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    ) : (
      <p>No hosts yet: register one with dynoplane hosts:create NAME.</p>
    )}
  </Layout>
);

/** The operator's fleet page: every host, with drain and undrain. Operators only. */
export const operatorPages = new Hono<DashboardEnv>()
  .get("/operator/hosts", async (c) => {
    const found = await operatorOrNotFound(c);
    if ("redirect" in found) return found.redirect;
    return c.html(<FleetView frame={frameOf(c, "Fleet")} hosts={await listHosts(c.var.db)} />);
  })
  .post(
    "/operator/hosts/:name/:action{drain|undrain}",
    dashboardForm(
      operatorOrNotFound,
      () => FLEET,
      async ({ c, session }) => {
        const name = c.req.param("name") ?? "";
        const by = { actor: session.actor, requestId: c.var.requestId, via: "dashboard" as const };
        if (c.req.param("action") !== "drain") return `${(await undrainHost(c.var.db, by, name)).name} takes dynos again.`;
        return `Draining ${(await drainHost(c.var.db, by, name)).name}: its dynos move to other hosts one at a time.`;
      },
    ),
  );
