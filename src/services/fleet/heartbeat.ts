import { signingKeys } from "../../auth/signing.ts";
import type { HostRow } from "../../db/schema/hosts.ts";
import { ApiError } from "../../errors.ts";
import { clocksOf } from "../../lib/clocks.ts";
import { type HeartbeatRequest, type HeartbeatResponse, SPOKEN_PROTOCOLS } from "../../protocol/host.ts";
import type { ServiceContext } from "../context.ts";
import { advanceRollouts, desiredForHost } from "../dynos/dynos.ts";
import { commandConfig } from "../dynos/host-commands.ts";
import { endOneOffDynos, FLEET_WATCH_NAME, recordObservedDynos, touchHost } from "./hosts.ts";
import { endVanishedOneOffs, finishReleasePhases } from "../builds/release-phase.ts";

/**
 * A host's heartbeat, the second half of every deploy, restart and crash: the host is
 * marked alive; what it runs is recorded (each dyno that changed state is an event); a
 * rolling release takes its next batch; ended release phases decide their releases;
 * one-off dynos that are over are forgotten; the fleet watch is kept armed. The events of
 * all this are dispatched once the host has its answer: what it should run. `router` is this
 * Worker instance's router, told which apps' dynos changed so it routes them afresh.
 */
export async function receiveHeartbeat(
  ctx: ServiceContext,
  router: { forgetRoutes(appIds: string[]): void },
  host: HostRow,
  body: HeartbeatRequest,
): Promise<HeartbeatResponse> {
  const { db, env } = ctx;
  const protocol = body.agent?.protocol ?? 1;
  if (!SPOKEN_PROTOCOLS.includes(protocol)) {
    throw new ApiError(
      "conflict",
      `This control plane speaks host protocol ${SPOKEN_PROTOCOLS.join(", ")}, and this agent (${body.agent?.version ?? "unknown version"}) speaks protocol ${protocol}: run an agent release that speaks protocol ${SPOKEN_PROTOCOLS.at(-1)}, or upgrade the control plane first.`,
    );
  }
  await touchHost(db, host, {
    agentVersion: body.agent?.version,
    url: body.url,
    rendezvous: body.rendezvous,
    session: body.session,
    capacityMb: body.capacity_mb,
    droppedLogLines: body.dropped_log_lines,
  });
  const { changed, movesEnded } = await recordObservedDynos(db, host.id, body.dynos);
  router.forgetRoutes(changed);
  // A release rolling through these apps' dynos takes its next batch once the last one is up
  // (this host hears of its own in the answer below; other hosts are told by its event).
  if (changed.length) await advanceRollouts(db, changed);
  // A release phase's end decides its release, before the ended one-off dynos are forgotten.
  await finishReleasePhases(db, env, host.id, body.dynos);
  const restarted = !!body.session && !!host.agentSession && body.session !== host.agentSession;
  const vanished = await endOneOffDynos(db, host.id, body.dynos, restarted);
  if (vanished.length) await endVanishedOneOffs(db, env, vanished, restarted);
  // The fleet (silent hosts, unplaced dynos, drains) is the FleetWatch's alone, one writer
  // on its own schedule; a heartbeat only keeps it armed, and wakes it at once when this
  // host is new or back, since dynos may be waiting for room. (Through the binding only: the
  // Durable Object's module is workerd's, and routes load in Node too.) A drain's move that
  // just ended lets the next one start now, not at the next check.
  const watch = env.FLEET_WATCH.get(env.FLEET_WATCH.idFromName(FLEET_WATCH_NAME));
  ctx.after((host.state === "up" && !movesEnded ? watch.arm() : watch.converge()).catch(() => {}));
  return {
    host_id: host.id,
    command_key: (await signingKeys(env.COMMAND_SIGNING_KEY)).publicJwk as JsonWebKey,
    desired: await desiredForHost(db, host.id, commandConfig(env).bootTimeoutS),
    heartbeat_interval_ms: clocksOf(env).heartbeatMs,
  };
}
